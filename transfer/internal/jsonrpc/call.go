package jsonrpc

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
)

// The methods of Open-Falcon's transfer.
const (
	methodUpdate = "Transfer.Update"
	methodPing   = "Transfer.Ping"
)

type callKind uint8

const (
	kindError  callKind = iota // answered with errMsg
	kindUpdate                 // points published, then TransferResponse
	kindPing                   // {"code":0}
)

// call is one request being answered; its points (in dec) stay valid
// until it goes back to the pool, after its reply.
type call struct {
	kind           callKind
	errMsg         string
	id             []byte // raw JSON of the request's id
	dec            proto.MVDecoder
	points         []proto.Point
	total, invalid int
	start          time.Time
	out            []byte

	prev, written chan struct{}
}

// failed is a call answering an error to a request that could not be
// read (id null).
func failed(msg string) *call {
	return &call{kind: kindError, errMsg: msg, id: []byte("null")}
}

// prepare reads the request at the start of b into c, which then owns
// all it needs of it: the method, the id and, for Transfer.Update, its
// points, decoded and validated, the rejected ones counted. whole is
// false when b ends before the request does (c is then to be prepared
// again with more); n is the request's length in b. ok is false for a
// request net/rpc would not answer (not JSON, not a request object): c
// then holds an error with id null and the connection must be closed.
func (s *Server) prepare(c *call, b []byte, start time.Time) (n int, ok, whole bool) {
	c.kind, c.errMsg, c.points, c.total, c.invalid, c.start = kindError, "", nil, 0, 0, start
	n, r, res, err := c.dec.DecodeRPCRequest(b, start.Unix())
	if err != nil {
		if je, isJSON := err.(*proto.JSONError); isJSON && je.Truncated() {
			return 0, false, false
		}
		return len(b), s.malformed(c, err), true
	}
	c.id = append(c.id[:0], r.ID...)
	if r.ID == nil {
		c.id = append(c.id, "null"...)
	}
	switch string(r.Method) {
	case methodUpdate:
		s.update(c, r, res)
	case methodPing:
		if r.Params == nil {
			c.errMsg = errMissingParams
		} else if k := r.Arg; k != nil && k[0] != '{' && k[0] != 'n' {
			c.errMsg = "json: cannot unmarshal " + jsonKind(k) + " into Go value of type model.NullRpcRequest"
		} else {
			c.kind = kindPing
		}
	default:
		c.errMsg = methodError(string(r.Method))
	}
	s.pub.Accepted(ingest.ListenerJSONRPC, len(c.points))
	return n, true, true
}

// malformed makes c the answer to a request that could not be read, and
// counts it; it returns false: the connection is to be closed.
func (s *Server) malformed(c *call, err error) bool {
	s.pub.Accepted(ingest.ListenerJSONRPC, 0) // a request, with no point
	s.pub.Refused(ingest.ListenerJSONRPC, ingest.RefusedMalformed, err)
	c.kind, c.id, c.errMsg = kindError, append(c.id[:0], "null"...), "malformed request: "+err.Error()
	return false
}

// net/rpc/jsonrpc's error for a request without params.
const errMissingParams = "jsonrpc: request body missing params"

// update takes the []MetricValue of a Transfer.Update (params[0],
// decoded in res).
func (s *Server) update(c *call, r proto.RPCRequest, res proto.MVResult) {
	switch a := r.Arg; {
	case r.Params == nil:
		c.errMsg = errMissingParams
		return
	case r.Params[0] != '[':
		c.errMsg = "json: cannot unmarshal " + jsonKind(r.Params) + " into Go value of type [1]interface {}"
		return
	case a == nil || a[0] == 'n': // [] or [null]: no point
	case a[0] != '[':
		c.errMsg = "json: cannot unmarshal " + jsonKind(a) + " into Go value of type []*model.MetricValue"
		return
	default:
		for _, rj := range res.Rejected {
			s.pub.Rejected(ingest.ListenerJSONRPC, rj.Reason, rj.Endpoint, rj.Metric)
		}
		c.points, c.total, c.invalid = res.Points, res.Total, len(res.Rejected)
	}
	c.kind = kindUpdate
}

// methodError is net/rpc's error for a method it does not serve.
func methodError(m string) string {
	dot := strings.LastIndex(m, ".")
	switch {
	case dot < 0:
		return "rpc: service/method request ill-formed: " + m
	case m[:dot] != "Transfer":
		return "rpc: can't find service " + m
	}
	return "rpc: can't find method " + m
}

// jsonKind names the kind of a JSON value as encoding/json's errors do.
func jsonKind(v []byte) string {
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// answer publishes c's points (waiting for their PubAck) and returns its
// reply. Publish is never cancelled: the points it holds are c's until it
// returns.
func (s *Server) answer(c *call) []byte {
	if c.kind == kindUpdate && len(c.points) > 0 {
		if err := s.pub.Publish(context.Background(), c.points); err != nil {
			s.pub.Refused(ingest.ListenerJSONRPC, ingest.RefusalOf(err), err)
			c.kind, c.errMsg = kindError, "points not stored, send them again: "+err.Error()
		}
	}
	c.out = c.reply(c.out[:0])
	return c.out
}

// reply appends c's response, as net/rpc/jsonrpc's server writes it (a
// JSON object and a newline).
func (c *call) reply(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = append(dst, c.id...)
	switch c.kind {
	case kindUpdate:
		dst = append(dst, `,"result":{"Message":"ok","Total":`...)
		dst = strconv.AppendInt(dst, int64(c.total), 10)
		dst = append(dst, `,"Invalid":`...)
		dst = strconv.AppendInt(dst, int64(c.invalid), 10)
		dst = append(dst, `,"Latency":`...)
		dst = strconv.AppendInt(dst, time.Since(c.start).Milliseconds(), 10)
		return append(dst, "},\"error\":null}\n"...)
	case kindPing:
		return append(dst, `,"result":{"code":0},"error":null}`+"\n"...)
	}
	msg, _ := json.Marshal(c.errMsg)
	dst = append(dst, `,"result":null,"error":`...)
	dst = append(dst, msg...)
	return append(dst, "}\n"...)
}

// putCall keeps c for another request.
func (s *Server) putCall(c *call) {
	c.points, c.prev, c.written = nil, nil, nil
	s.calls.Put(c)
}

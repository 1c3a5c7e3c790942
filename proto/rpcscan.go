package proto

import (
	"errors"
)

// RPCRequest is one request of Go's net/rpc/jsonrpc (JSON-RPC 1.0), the
// wire format of Open-Falcon's Transfer.Update:
// {"method":"Transfer.Update","params":[[<MetricValue>,...]],"id":N}. Its
// byte slices point into the request given to DecodeRPCRequest.
type RPCRequest struct {
	Method []byte // decoded; empty when absent or null
	ID     []byte // raw JSON; nil when absent or null (the reply's id is then null)
	Params []byte // raw JSON; nil when absent or null
	Arg    []byte // raw JSON of params[0]; nil unless params is an array with an element
}

// ErrRPCNotObject is a request that is not a JSON object.
var ErrRPCNotObject = errors.New("request is not a JSON object")

// ErrRPCMethodType is a request whose method is not a string.
var ErrRPCMethodType = errors.New("request method is not a string")

// DecodeRPCRequest reads the request at the start of b (white space
// before it skipped), as net/rpc/jsonrpc's server codec reads one from
// its stream: keys matched as encoding/json matches them, the last of a
// repeated key winning, other keys ignored, the request checked as
// encoding/json checks it. n is the length of b the request took, what
// follows is not looked at. An error is a request net/rpc would not
// answer (it closes the connection): a *JSONError (Truncated when b ends
// before the request does), ErrRPCNotObject, ErrRPCMethodType.
//
// When params[0] (Arg) is an array, it is decoded on the way as Decode
// would decode it as a body (Transfer.Update's []MetricValue): the
// result is valid until the next call, as Decode's.
func (d *MVDecoder) DecodeRPCRequest(b []byte, now int64) (n int, r RPCRequest, res MVResult, err error) {
	n, r, res, err = d.rpcRequest(b, now)
	if err != nil {
		d.reset()
		return 0, RPCRequest{}, MVResult{}, err
	}
	return n, r, res, nil
}

func (d *MVDecoder) rpcRequest(req []byte, now int64) (n int, r RPCRequest, res MVResult, err error) {
	d.reset()
	i := skipWS(req, 0)
	switch {
	case i >= len(req):
		return 0, r, res, jsonErr(req, i, "")
	case req[i] == 'n': // null decodes into an empty request
		n, err = scanLiteral(req, i)
		return n, r, res, err
	case req[i] != '{':
		return 0, r, res, ErrRPCNotObject
	}
	i = skipWS(req, i+1)
	typeErr := false
	for closed := i < len(req) && req[i] == '}'; !closed; {
		if i >= len(req) || req[i] != '"' {
			return 0, r, res, jsonErr(req, i, "looking for beginning of object key string")
		}
		end, flags, err := scanString(req, i)
		if err != nil {
			return 0, r, res, err
		}
		key := req[i+1 : end-1]
		if flags != 0 {
			key = appendString(nil, req[i:end], flags)
		}
		if i, err = colon(req, end); err != nil {
			return 0, r, res, err
		}
		start := i
		var arg []byte
		isParams := keyIs(key, "params")
		if isParams && i < len(req) && req[i] == '[' {
			i, arg, res, err = d.params(req, i, now)
		} else {
			i, err = d.skip(req, i, 1)
		}
		if err != nil {
			return 0, r, res, err
		}
		val := req[start:i]
		switch {
		case keyIs(key, "method"):
			switch val[0] {
			case '"':
				_, flags, _ := scanString(val, 0)
				r.Method = val[1 : len(val)-1]
				if flags != 0 {
					r.Method = appendString(nil, val, flags)
				}
			case 'n':
			default:
				typeErr = true
			}
		case isParams:
			r.Params, r.Arg = nil, arg
			if val[0] != 'n' {
				r.Params = val
			}
			if arg == nil || arg[0] != '[' {
				res = MVResult{}
			}
		case keyIs(key, "id"):
			r.ID = nil
			if val[0] != 'n' {
				r.ID = val
			}
		}
		i = skipWS(req, i)
		switch {
		case i < len(req) && req[i] == '}':
			closed = true
		case i < len(req) && req[i] == ',':
			i = skipWS(req, i+1)
		default:
			return 0, r, res, jsonErr(req, i, "after object key:value pair")
		}
	}
	if typeErr {
		return 0, r, res, ErrRPCMethodType
	}
	return i + 1, r, res, nil
}

// params reads the params array at b[i] and returns its first element
// (nil when it has none), decoded when it is an array.
func (d *MVDecoder) params(b []byte, i int, now int64) (end int, arg []byte, res MVResult, err error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil, res, nil
	}
	for n := 0; ; n++ {
		start := skipWS(b, i)
		if n == 0 && start < len(b) && b[start] == '[' {
			d.reset() // a repeated params: the last wins
			var total int
			d.base = 2
			i, total, err = d.array(b, start, now)
			d.base = 0
			res = d.result(total)
		} else {
			i, err = d.skip(b, start, 2)
		}
		if err != nil {
			return 0, nil, res, err
		}
		if n == 0 {
			arg = b[start:i]
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, arg, res, nil
		}
		return 0, nil, res, jsonErr(b, i, "after array element")
	}
}

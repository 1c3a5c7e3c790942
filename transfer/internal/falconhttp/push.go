// Package falconhttp is the transfer's Open-Falcon HTTP push: POST
// /api/push with a JSON array of MetricValue, answered as Open-Falcon's
// transfer answers ({"msg":"success","data":TransferResponse}) once every
// valid point of the body is stored in the ingest stream.
//
// Replies: 200 after the PubAck of the points; 400 for a body that is
// empty or not a JSON array; 413 over max_request_bytes; 503 with
// Retry-After when the points cannot be stored now (the client sends
// them again); 405 for another method. Requests, valid points, rejected
// points by reason and refusals are counted by the publisher under the
// listener "http_push". Bodies are decoded by proto.MVDecoder into
// buffers kept in a pool: no allocation per point.
package falconhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
)

// Publisher is what the handler needs of an *ingest.Publisher.
type Publisher interface {
	Publish(ctx context.Context, pts []proto.Point) error
	Accepted(listener string, n int)
	Rejected(listener string, r proto.Reason, endpoint, metric string)
	Refused(listener, reason string, err error)
}

const listener = ingest.ListenerHTTPPush

// Handler serves POST /api/push.
type Handler struct {
	maxBody int
	pub     Publisher
	states  sync.Pool // *state
}

// state is what one request uses; the points it decodes live in it.
type state struct {
	body bytes.Buffer
	dec  proto.MVDecoder
	out  []byte
}

// maxPooled bounds the body buffer a pooled state keeps.
const maxPooled = 4 << 20

// NewHandler returns the handler; maxBody is ingest.max_request_bytes.
func NewHandler(maxBody int, pub Publisher) *Handler {
	h := &Handler{maxBody: maxBody, pub: pub}
	h.states.New = func() any { return new(state) }
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		h.pub.Accepted(listener, 0) // a request, with no point
		h.pub.Refused(listener, ingest.RefusedMalformed, fmt.Errorf("method %s", r.Method))
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: use POST", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength > int64(h.maxBody) {
		h.pub.Accepted(listener, 0)
		h.tooLarge(w, fmt.Errorf("Content-Length %d", r.ContentLength))
		return
	}
	st := h.states.Get().(*state)
	st.body.Reset()
	if r.ContentLength > 0 {
		st.body.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := st.body.ReadFrom(http.MaxBytesReader(w, r.Body, int64(h.maxBody))); err != nil {
		h.put(st)
		h.readFailed(w, r, err)
		return
	}
	res, err := st.dec.Decode(st.body.Bytes(), start.Unix())
	if err != nil {
		h.put(st)
		h.pub.Accepted(listener, 0)
		h.pub.Refused(listener, ingest.RefusedMalformed, err)
		http.Error(w, "decode error: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, rj := range res.Rejected {
		h.pub.Rejected(listener, rj.Reason, rj.Endpoint, rj.Metric)
	}
	h.pub.Accepted(listener, len(res.Points))
	if err := h.pub.Publish(r.Context(), res.Points); err != nil {
		h.pub.Refused(listener, ingest.RefusalOf(err), err)
		if r.Context().Err() != nil {
			// The client went away. Publish may still hold res's points
			// in a batch being filled: st is left to the garbage
			// collector, never reused under them.
			return
		}
		h.put(st)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "points not stored, send them again: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	st.out = append(st.out[:0], `{"msg":"success","data":{"Message":"ok","Total":`...)
	st.out = strconv.AppendInt(st.out, int64(res.Total), 10)
	st.out = append(st.out, `,"Invalid":`...)
	st.out = strconv.AppendInt(st.out, int64(len(res.Rejected)), 10)
	st.out = append(st.out, `,"Latency":`...)
	st.out = strconv.AppendInt(st.out, time.Since(start).Milliseconds(), 10)
	st.out = append(st.out, "}}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(st.out)
	h.put(st)
}

func (h *Handler) put(st *state) {
	if st.body.Cap() <= maxPooled {
		h.states.Put(st)
	}
}

func (h *Handler) tooLarge(w http.ResponseWriter, err error) {
	h.pub.Refused(listener, ingest.RefusedTooLarge, err)
	http.Error(w, fmt.Sprintf("body exceeds %d bytes (max_request_bytes)", h.maxBody), http.StatusRequestEntityTooLarge)
}

// readFailed answers a body that could not be read whole.
func (h *Handler) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	h.pub.Accepted(listener, 0)
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		h.tooLarge(w, err)
	case errors.As(err, &ne) && ne.Timeout():
		h.pub.Refused(listener, ingest.RefusedTimeout, err)
		http.Error(w, "body not received in time", http.StatusRequestTimeout)
	default:
		h.pub.Refused(listener, ingest.RefusedMalformed, fmt.Errorf("body cut short: %w", err))
		if r.Context().Err() == nil { // else the client went away
			http.Error(w, "cannot read body: "+err.Error(), http.StatusBadRequest)
		}
	}
}

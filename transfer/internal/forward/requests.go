package forward

import (
	"context"
	"errors"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

func (e *Engine) send(js *judgeQueue, b *batch) {
	b.data = b.enc.AppendTo(b.data[:0])
	js.inflight++
	e.inflight++
	go e.request(js.subject, b)
}

// request runs in its own goroutine: one NATS request, result to the loop.
func (e *Engine) request(subject string, b *batch) {
	start := time.Now()
	reply, err := e.nc.Request(subject, b.data, e.cfg.RequestTimeout)
	b.dur = time.Since(start)
	if err == nil {
		err = proto.DecodeJudgeReply(reply.Data)
	}
	b.err = err
	select {
	case e.results <- b:
	case <-e.done:
	}
}

// complete handles a request's result.
func (e *Engine) complete(b *batch, now time.Time) {
	js := b.js
	js.inflight--
	e.inflight--
	js.pending -= len(b.refs)
	out, refused, pf := outcomeOf(b.err)
	e.met.RequestDuration[out.String()].Observe(b.dur.Seconds())
	switch out {
	case outOK:
		js.failures = 0
		js.holdUntil = time.Time{}
		e.mem.RequestOK(js.node)
		e.speedUp(js)
		e.met.PointsForwarded.Add(float64(len(b.refs)))
		for _, r := range b.refs {
			e.pointDone(r)
		}
		e.freeBatch(b)
		e.forget(js)
		return
	// A partial reply acknowledges what was judged, also while stopping.
	case outMoved:
		e.movedReply(b, refused, now)
		return
	case outPartial:
		e.pointsReply(b, pf, now)
		return
	}
	if e.stopping {
		// No retries while stopping: these messages stay unacked and are
		// handed back (Nak) at the end of shutdown.
		e.freeBatch(b)
		return
	}
	e.met.JudgeRetries.WithLabelValues(out.String()).Inc()
	if ok, n := e.rl.Allow("retry:" + out.String()); ok {
		e.log.Warn("judge request failed, retrying", "node", js.node, "reason", out.String(), "points", len(b.refs), "err", b.err, "suppressed", n)
	}
	switch out {
	case outNoResponders:
		e.mem.NoResponders(js.node, now)
	case outTimeout:
		// A judge that times out but heartbeats is slow, not gone: fewer
		// requests in flight and backoff; the membership takes it out
		// only when no request succeeded for unresponsive_after.
		e.slowDown(js)
		e.mem.RequestTimeout(js.node, now)
	}
	if out != outNoResponders {
		js.failures++
		js.holdUntil = now.Add(e.backoff(js.failures))
	}
	// Adopt the ring first (the judge may just have left it), then put the
	// points back on their current owners.
	e.syncRing(now)
	for _, r := range b.refs {
		e.route(r, now)
	}
	e.freeBatch(b)
	e.forget(js)
}

// movedOf returns the bitmap of a MOVED reply (nil: every point).
func movedOf(err error) ([]byte, bool) {
	var je *proto.JudgeError
	if !errors.As(err, &je) {
		return nil, false
	}
	refused, ok, berr := je.Moved()
	if !ok || berr != nil {
		return nil, false // a bad bitmap is retried as any error reply
	}
	return refused, true
}

// movedReply handles a MOVED reply: the judge judged the points it serves and
// refused the others (not its own in its view of the ring, or gained less
// than its settle period ago). The refused points are routed again on the
// current ring after a short hold of that judge (the views converge within
// a member message or a settle period); the judge is not failing, so
// neither backoff nor suspicion applies.
func (e *Engine) movedReply(b *batch, refused []byte, now time.Time) {
	js := b.js
	e.mem.RequestOK(js.node)
	e.speedUp(js)
	js.failures = 0
	js.holdUntil = now.Add(e.cfg.MovedRetry)
	e.met.JudgeRetries.WithLabelValues(RetryMoved).Inc()
	if !e.stopping {
		e.syncRing(now)
	}
	n := 0
	for i, r := range b.refs {
		if proto.MovedHas(refused, i) {
			n++
			if !e.stopping { // else handed back (Nak) at the end of shutdown
				e.route(r, now)
			}
			continue
		}
		e.met.PointsForwarded.Inc()
		e.pointDone(r)
	}
	e.met.PointsMoved.Add(float64(n))
	if ok, c := e.rl.Allow("retry:" + RetryMoved); ok {
		e.log.Info("judge does not serve some points (MOVED), routing them again", "node", js.node, "moved", n, "accepted", len(b.refs)-n, "suppressed", c)
	}
	e.freeBatch(b)
	e.forget(js)
}

// slowDown halves a judge's in-flight limit (down to 1) after a request
// timed out; the first time, the judge is marked slow (counted, logged).
func (e *Engine) slowDown(js *judgeQueue) {
	js.limit = max(1, js.limit/2)
	if js.slow {
		return
	}
	js.slow = true
	js.slowGauge.Set(1)
	e.met.JudgeSlowdowns.Inc()
	if ok, n := e.rl.Allow("slow:" + js.node); ok {
		e.log.Warn("judge slow: fewer requests in flight and backoff, it stays in the ring", "node", js.node,
			"max_inflight", js.limit, "suppressed", n)
	}
}

// speedUp raises a judge's in-flight limit by one per timely reply, back
// to MaxInflight, where it is no longer slow.
func (e *Engine) speedUp(js *judgeQueue) {
	if js.limit < e.cfg.MaxInflight {
		js.limit++
	}
	if js.slow && js.limit >= e.cfg.MaxInflight {
		js.slow = false
		js.slowGauge.Set(0)
		e.log.Info("judge no longer slow", "node", js.node, "max_inflight", js.limit)
	}
}

// outcome is how a judge request ended.
type outcome uint8

const (
	outOK           outcome = iota
	outMoved                // MOVED: some points are not served there
	outPartial              // POINTS: some points were not judged
	outNoResponders         // nobody subscribed to the judge's subject
	outTimeout
	outErrorReply // -ERR for the whole request
	outBadReply   // a reply that does not decode
	outRequestError
)

// String returns the outcome's metric label (result and retry reason).
func (o outcome) String() string {
	return [...]string{ResultOK, ResultMoved, ResultPartial, ResultNoResp, ResultTimeout,
		ResultError, ResultBadReply, ResultReqError}[o]
}

// outcomeOf classifies a request's error, with a MOVED reply's bitmap or a
// POINTS reply's failures.
func outcomeOf(err error) (outcome, []byte, *proto.PointFailures) {
	if err == nil {
		return outOK, nil, nil
	}
	if refused, ok := movedOf(err); ok {
		return outMoved, refused, nil
	}
	if pf, ok := pointsOf(err); ok {
		return outPartial, nil, pf
	}
	var je *proto.JudgeError
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return outNoResponders, nil, nil
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return outTimeout, nil, nil
	case errors.As(err, &je):
		return outErrorReply, nil, nil
	case errors.Is(err, proto.ErrJudgeReply):
		return outBadReply, nil, nil
	default:
		return outRequestError, nil, nil
	}
}

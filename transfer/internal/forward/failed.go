package forward

import (
	"context"
	"errors"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/deadletter"
)

// DeadLetter keeps points that failed at a judge too often, where an
// operator can inspect and replay them (see internal/deadletter).
type DeadLetter interface {
	// Publish stores one batch (proto-encoded points) durably; nil means
	// stored (the points may then be acknowledged).
	Publish(ctx context.Context, batch []byte, info deadletter.Info) error
}

// A judge reports per point what it did not judge (proto.PointFailures):
//   - moved and retry (transient: Redis unreachable, a timeout) points are
//     routed again at once; retry ones count as a failed request of that
//     judge (backoff) and never towards dead-lettering;
//   - failed points (an error that will recur there) wait one
//     RetryBackoff before they are sent again — nothing else waits for
//     them, and the judge is not held — and after DeadLetterAfter failed
//     attempts they are published to the dead-letter stream and then
//     acknowledged like judged points.

// delayedRef is a failed point waiting until due to be routed again.
type delayedRef struct {
	r   ref
	due time.Time
}

// dlBatch is one dead-letter publication: points of one judge reply.
type dlBatch struct {
	refs []ref
	data []byte
	info deadletter.Info
	err  error
	due  time.Time // of the next attempt after a failed publication
}

// pointsOf returns the failures of a POINTS reply.
func pointsOf(err error) (*proto.PointFailures, bool) {
	var je *proto.JudgeError
	if !errors.As(err, &je) {
		return nil, false
	}
	pf, ok, perr := je.Points()
	if !ok || perr != nil {
		return nil, false // a bad reply is retried as any error reply
	}
	return pf, true
}

// backoff returns the hold after a judge's n-th failure in a row.
func (e *Engine) backoff(n int) time.Duration {
	d := e.cfg.RetryBackoff << min(n-1, 20)
	if d > e.cfg.MaxBackoff || d <= 0 {
		d = e.cfg.MaxBackoff
	}
	return d
}

// pointsReply handles a POINTS reply (see the comment above).
func (e *Engine) pointsReply(b *batch, pf *proto.PointFailures, now time.Time) {
	js := b.js
	e.mem.RequestOK(js.node) // it answered: alive
	e.speedUp(js)
	switch {
	case len(pf.Retry) > 0:
		js.failures++
		js.holdUntil = now.Add(e.backoff(js.failures))
	case len(pf.Moved) > 0:
		js.failures = 0
		js.holdUntil = now.Add(e.cfg.MovedRetry)
	default:
		js.failures = 0
	}
	e.met.JudgeRetries.WithLabelValues(RetryPartial).Inc()
	if !e.stopping {
		e.syncRing(now)
	}
	var moved, retry, failed int
	var dead []ref
	for i, r := range b.refs {
		switch {
		case proto.BitHas(pf.Moved, i), proto.BitHas(pf.Retry, i):
			if proto.BitHas(pf.Moved, i) {
				moved++
			} else {
				retry++
			}
			if !e.stopping { // else handed back (Nak) at the end of shutdown
				e.route(r, now)
			}
		case proto.BitHas(pf.Failed, i):
			failed++
			if e.stopping {
				continue
			}
			n := r.m.failed(r.i)
			if e.cfg.DeadLetter != nil && e.cfg.DeadLetterAfter > 0 && n >= e.cfg.DeadLetterAfter {
				dead = append(dead, r)
				continue
			}
			e.delayed = append(e.delayed, delayedRef{r: r, due: now.Add(e.cfg.RetryBackoff)})
		default:
			e.met.PointsForwarded.Inc()
			e.pointDone(r)
		}
	}
	e.met.PointsMoved.Add(float64(moved))
	e.met.FailedTransient.Add(float64(retry))
	e.met.FailedPermanent.Add(float64(failed))
	if failed > 0 {
		if ok, c := e.rl.Allow("failed:" + js.node); ok {
			e.log.Warn("judge failed points with an error that will recur: sent again after retry_backoff, dead-lettered after dead_letter_after attempts",
				"node", js.node, "failed", failed, "reason", pf.Reason, "suppressed", c)
		}
	}
	if retry > 0 {
		if ok, c := e.rl.Allow("retry:" + RetryPartial); ok {
			e.log.Warn("judge could not judge points for now (transient), retrying with backoff", "node", js.node, "points", retry, "reason", pf.Reason, "suppressed", c)
		}
	}
	if len(dead) > 0 {
		e.deadLetter(dead, deadletter.Info{Judge: js.node, Reason: pf.Reason, Attempts: e.cfg.DeadLetterAfter})
	}
	e.freeBatch(b)
	e.forget(js)
}

// failed counts one permanent failure of point i and returns the count.
func (m *inMsg) failed(i int32) int {
	if m.fails == nil {
		m.fails = make([]uint16, len(m.points))
	}
	if m.fails[i] < ^uint16(0) {
		m.fails[i]++
	}
	return int(m.fails[i])
}

// deadLetter publishes refs' points, re-encoded as one batch.
func (e *Engine) deadLetter(refs []ref, info deadletter.Info) {
	d := &dlBatch{refs: refs, info: info}
	var enc proto.Encoder
	for _, r := range refs {
		enc.Add(&r.m.points[r.i])
	}
	d.data = enc.AppendTo(nil)
	e.sendDeadLetter(d)
}

func (e *Engine) sendDeadLetter(d *dlBatch) {
	e.dlInflight++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RequestTimeout)
		d.err = e.cfg.DeadLetter.Publish(ctx, d.data, d.info)
		cancel()
		select {
		case e.dlResults <- d:
		case <-e.done:
		}
	}()
}

// deadLettered handles the result of a dead-letter publication.
func (e *Engine) deadLettered(d *dlBatch, now time.Time) {
	e.dlInflight--
	if d.err != nil {
		e.met.DeadLetterErrors.Inc()
		if ok, c := e.rl.Allow("deadletter_error"); ok {
			e.log.Error("cannot publish to the dead-letter stream: the points stay held and are published again", "points", len(d.refs), "err", d.err, "retry_in", e.cfg.RetryBackoff, "suppressed", c)
		}
		if !e.stopping { // else handed back (Nak) at the end of shutdown
			d.due = now.Add(e.cfg.RetryBackoff)
			e.dlWaiting = append(e.dlWaiting, d)
		}
		return
	}
	e.met.DeadLettered.Add(float64(len(d.refs)))
	if ok, c := e.rl.Allow("deadlettered"); ok {
		e.log.Error("points dead-lettered: they failed at a judge with an error that will recur; inspect and replay with `kestrel-transfer deadletter`",
			"points", len(d.refs), "node", d.info.Judge, "attempts", d.info.Attempts, "reason", d.info.Reason, "suppressed", c)
	}
	for _, r := range d.refs {
		e.pointDone(r)
	}
}

// pumpFailed routes the failed points whose wait is over and publishes
// again the dead letters whose publication failed; it returns the next
// time it has work (zero for none).
func (e *Engine) pumpFailed(now time.Time) time.Time {
	var next time.Time
	n := 0
	for n < len(e.delayed) && !now.Before(e.delayed[n].due) {
		e.route(e.delayed[n].r, now)
		n++
	}
	if n > 0 {
		rest := copy(e.delayed, e.delayed[n:])
		clear(e.delayed[rest:])
		e.delayed = e.delayed[:rest]
	}
	if len(e.delayed) > 0 {
		next = e.delayed[0].due
	}
	waiting := e.dlWaiting[:0]
	for _, d := range e.dlWaiting {
		if now.Before(d.due) {
			waiting = append(waiting, d)
			if next.IsZero() || d.due.Before(next) {
				next = d.due
			}
			continue
		}
		e.sendDeadLetter(d)
	}
	clear(e.dlWaiting[len(waiting):])
	e.dlWaiting = waiting
	w := len(e.delayed)
	for _, d := range e.dlWaiting {
		w += len(d.refs)
	}
	e.met.FailedWaiting.Set(float64(w))
	return next
}

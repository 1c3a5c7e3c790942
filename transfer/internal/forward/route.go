package forward

import (
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// route puts one point in the pending batch of its owner on the engine's
// ring, or parks it when no judge is alive.
func (e *Engine) route(r ref, now time.Time) {
	p := &r.m.points[r.i]
	e.keyBuf = proto.AppendSeriesKey(e.keyBuf[:0], p.Endpoint, p.Metric, p.Tags)
	node, ok := e.ring.Locate(e.keyBuf)
	if !ok {
		e.parked = append(e.parked, r)
		return
	}
	js := e.judges[node]
	if js.cur == nil {
		js.cur = e.newBatch(js)
		js.cur.started = now
	}
	b := js.cur
	b.enc.Add(p)
	b.refs = append(b.refs, r)
	js.pending++
	if len(b.refs) >= e.cfg.BatchPoints || b.enc.Len() >= e.cfg.MaxBatchBytes {
		js.ready = append(js.ready, b)
		js.cur = nil
	}
}

// syncRing adopts the membership's current ring: judges that left give
// their queued points back to be re-located, parked points are placed.
// While the membership warms up (after the start or a NATS reconnect) the
// ring adopted is idle: every point is parked until every live judge has
// been heard, so series are not all sent to the first judge heard.
func (e *Engine) syncRing(now time.Time) {
	if ready := e.mem.Ready(); ready != e.ready {
		e.ready = ready
		if ready {
			e.met.WarmingUp.Set(0)
			e.log.Info("membership warm-up over: routing", "members", e.mem.Ring().Len(), "parked_points", len(e.parked))
		} else {
			e.met.WarmingUp.Set(1)
			e.log.Warn("membership warming up (nats reconnected): routing held, points parked", "warm_up", e.mem.WarmUp())
		}
	}
	r := e.idle
	if e.ready {
		r = e.mem.Ring()
	}
	if r == e.ring {
		return
	}
	e.ring = r
	for _, n := range r.Members() {
		if e.judges[n] == nil {
			e.judges[n] = &judgeQueue{node: n, subject: e.subj.Judge(n), limit: e.cfg.MaxInflight,
				gauge: e.met.JudgePendingPoints.WithLabelValues(n), slowGauge: e.met.JudgeSlow.WithLabelValues(n)}
			e.judges[n].slowGauge.Set(0)
		}
	}
	moved := e.moved[:0]
	for n, js := range e.judges {
		if r.Has(n) {
			continue
		}
		if js.cur != nil {
			moved = append(moved, js.cur.refs...)
			js.pending -= len(js.cur.refs)
			e.freeBatch(js.cur)
			js.cur = nil
		}
		for _, b := range js.ready {
			moved = append(moved, b.refs...)
			js.pending -= len(b.refs)
			e.freeBatch(b)
		}
		js.ready = js.ready[:0]
		e.forget(js)
	}
	moved = append(moved, e.parked...)
	e.parked = e.parked[:0]
	for _, rf := range moved {
		e.route(rf, now)
	}
	clear(moved)
	e.moved = moved[:0]
}

// forget drops a judge that is out of the ring and has nothing in flight.
func (e *Engine) forget(js *judgeQueue) {
	if js.inflight > 0 || js.cur != nil || len(js.ready) > 0 || e.ring.Has(js.node) {
		return
	}
	delete(e.judges, js.node)
	e.met.JudgePendingPoints.DeleteLabelValues(js.node)
	e.met.JudgeSlow.DeleteLabelValues(js.node)
}

// pump seals batches whose linger passed and sends ready batches within
// each judge's in-flight limit (lowered while it is slow) and retry hold. It returns the next time it
// needs to run (zero for none).
func (e *Engine) pump(now time.Time) time.Time {
	var next time.Time
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if !e.stopping {
		if t := e.pumpFailed(now); !t.IsZero() {
			soonest(t)
		}
	}
	for _, js := range e.judges {
		if js.cur != nil {
			if due := js.cur.started.Add(e.cfg.Linger); e.stopping || !now.Before(due) {
				js.ready = append(js.ready, js.cur)
				js.cur = nil
			} else {
				soonest(due)
			}
		}
		for len(js.ready) > 0 && (e.stopping || js.inflight < js.limit) {
			if !e.stopping && now.Before(js.holdUntil) {
				soonest(js.holdUntil)
				break
			}
			b := js.ready[0]
			copy(js.ready, js.ready[1:])
			js.ready[len(js.ready)-1] = nil
			js.ready = js.ready[:len(js.ready)-1]
			e.send(js, b)
		}
		js.gauge.Set(float64(js.pending))
	}
	e.met.PendingPoints.Set(float64(e.pending))
	e.met.ParkedPoints.Set(float64(len(e.parked)))
	e.met.MessagesHeld.Set(float64(e.held))
	e.met.JudgeInflight.Set(float64(e.inflight))
	return next
}

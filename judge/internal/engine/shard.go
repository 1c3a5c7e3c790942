package engine

import (
	"context"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/window"
	"github.com/kestrel-mon/kestrel/proto"
)

// series is one series' window and its cached alarm states.
type series struct {
	key      string
	win      window.Buffer // the series' window
	typ      proto.CounterType
	lastSeen int64 // wall clock, unix ns
	slots    []slot
	hash     uint64     // xxhash64 of key: its shard and ring partition
	gen      uint64     // ownership period the window and states belong to (see owner)
	rules    *rules.Set // rules whose states were prepared (nil: prepare again)
}

// shard is one worker's series: only its worker (or Process, under mu)
// touches them.
type shard struct {
	e      *Engine
	mu     sync.Mutex
	series map[string]*series
	ch     chan *part
	keyBuf []byte
	pend   []pendingLoad // states to read before judging a part
	ids    []string
	vals   []float64
	ts     []int64
	snap   []window.Point // the window saved before a late point's insertion
}

func (s *shard) run() {
	for pt := range s.ch {
		s.processPart(pt)
		pt.req.finish()
	}
}

// processPart judges the points of pt in order and reports those it could
// not judge in the request (see failure): after a transient failure the
// rest of the part is not tried; after a permanent one it goes on.
func (s *shard) processPart(pt *part) {
	rs := s.e.rules.Get()
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.prepare(s.e.ctx, pt, rs, now); err != nil && classify(err) != failPermanent {
		// Redis unreachable: every point would wait for it in turn.
		pt.req.fail(pt, 0, len(pt.points), failRetry, err)
		s.e.pointFailed(failRetry, "", err)
		return
	}
	// A permanent error of the batched read (a reply about one key) is
	// met again, point by point, by the fallback read in slot.
	for i := range pt.points {
		se := pt.series[i]
		if se == nil {
			continue // reported moved by prepare
		}
		err := s.processPoint(s.e.ctx, se, &pt.points[i], rs)
		if err == nil {
			continue
		}
		f := classify(err)
		s.e.pointFailed(f, se.key, err)
		if f == failPermanent {
			pt.req.fail(pt, i, i+1, f, err)
			continue
		}
		pt.req.fail(pt, i, len(pt.points), f, err)
		return
	}
}

// processPoint judges p and commits it to its series' window only when
// every alarm write succeeded. s.mu is held.
//
// A point newer than the window is staged with a push (undone by
// Rollback on error) and the rules run as of it. A late point (older than
// the newest) goes to processLate. A point whose timestamp the window holds
// (the first one is kept), or older than a full window, is counted and not
// judged.
//
// se is p's series as prepare (or lookup) found it: owned throughout, its
// states loaded.
func (s *shard) processPoint(ctx context.Context, se *series, p *proto.Point, rs *rules.Set) error {
	e := s.e
	pt := window.Point{TS: p.Timestamp, Value: p.Value}
	if !se.win.Accepts(p.Timestamp) { // not the newest: the uncommon path
		switch place, k := se.win.Locate(p.Timestamp); place {
		case window.Duplicate:
			e.m.IgnoredDuplicate.Inc()
			return nil
		case window.TooOld:
			e.m.IgnoredTooOld.Inc()
			return nil
		case window.Late:
			return s.processLate(ctx, se, p, pt, k, rs)
		}
	}
	undo := se.win.Push(pt)
	oldType := se.typ
	se.typ = p.Type
	if rl := rs.ForMetric(p.Metric); len(rl) > 0 {
		matched, err := s.evaluate(ctx, se, p, rl, 0)
		if err != nil {
			se.win.Rollback(undo)
			se.typ = oldType
			return err
		}
		if matched {
			e.m.PointsEvaluated.Inc()
		}
	}
	if se.typ == proto.Counter {
		s.countResets(se, 0)
	}
	return nil
}

// processLate judges a late point p (pt in the window), which belongs at
// position k of se's window (k newer points; a full window drops its
// oldest). The window is saved in the shard's scratch buffer, p inserted,
// and the rules run as of p and then as of every newer point, oldest
// first, through the same state machine; when a write fails the saved
// window is restored exactly. The series type stays that of the newest
// point.
func (s *shard) processLate(ctx context.Context, se *series, p *proto.Point, pt window.Point, k int, rs *rules.Set) error {
	e := s.e
	if cap(s.snap) < se.win.Cap() {
		s.snap = make([]window.Point, 0, se.win.Cap())
	}
	s.snap = se.win.Snapshot(s.snap)
	se.win.Insert(k, pt)
	if rl := rs.ForMetric(p.Metric); len(rl) > 0 {
		for at := k; at >= 0; at-- {
			matched, err := s.evaluate(ctx, se, p, rl, at)
			if err != nil {
				se.win.Restore(s.snap)
				return err
			}
			if !matched {
				break // no rule matches the series, as of any point
			}
			if at == k {
				e.m.PointsEvaluated.Inc()
			}
		}
	}
	e.m.PointsLate.Inc()
	if se.typ == proto.Counter {
		s.countResets(se, k)
	}
	return nil
}

// countResets counts the resets (decreases) of a COUNTER that the point
// just committed at position i of se's window brought in, once per point.
func (s *shard) countResets(se *series, i int) {
	if n := se.win.Resets(i); n > 0 {
		s.e.m.CounterResets.Add(float64(n))
	}
}

// evaluate runs the rules of rl that match p's series as of the at-th
// newest point of its window (0 = the newest): a function sees that point
// and the older ones only (for COUNTER/DERIVE the rates computed from
// them), and the alarm's point time is that point's. It reports whether a
// rule matched.
func (s *shard) evaluate(ctx context.Context, se *series, p *proto.Point, rl []*rules.Rule, at int) (bool, error) {
	e := s.e
	n := -1
	var pointTS int64
	for _, r := range rl {
		if !r.Matches(p.Endpoint, p.Tags) {
			continue
		}
		if n < 0 {
			pointTS = se.win.At(at).TS
			if se.typ.IsRate() {
				n = se.win.Rates(at, se.typ == proto.Counter, s.vals, s.ts)
			} else {
				n = se.win.Values(at, s.vals, s.ts)
			}
		}
		e.m.RuleEvals.Inc()
		res, ok := r.Fn.Eval(s.vals[:n])
		if !ok {
			continue
		}
		// s.ts holds the oldest raw point each value used: the point
		// itself, or for a rate the older point of its pair.
		if err := s.transition(ctx, se, p, r, res, pointTS, s.ts[res.Used-1]); err != nil {
			return true, err
		}
	}
	return n >= 0, nil
}

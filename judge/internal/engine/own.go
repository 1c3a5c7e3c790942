package engine

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/alarm"
	"github.com/kestrel-mon/kestrel/judge/internal/owner"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/window"
	"github.com/kestrel-mon/kestrel/proto"
)

// redisError counts a failed Redis operation and logs it, at most once per
// 10 s, with what was being done (the request is answered -ERR and sent
// again by the transfer).
func (e *Engine) redisError(what string, err error, kv ...any) {
	e.m.RedisErrors.Inc()
	if ok, n := e.rl.Allow("redis"); ok {
		e.log.Warn("redis failed: the points are reported unjudged to the transfer, which sends them again",
			append([]any{"op", what, "err", err, "suppressed", n}, kv...)...)
	}
}

// noteUnreadable counts and logs (at most once per 10 s) a stored state
// that cannot be read. It is not an error: retrying would fail for ever.
func (e *Engine) noteUnreadable(id string, st alarm.State) {
	if st.Unreadable == "" {
		return
	}
	e.m.Unreadable.Inc()
	if ok, n := e.rl.Allow("unreadable"); ok {
		e.log.Warn("unreadable alarm state, judged as absent; the next transition overwrites it",
			"key", e.store.Keys().AlarmKey(id), "stored", strconv.Quote(st.Unreadable), "suppressed", n)
	}
}

// SetOwner makes the engine serve only the partitions t says it owns
// (call before Start). Without it every series is served.
func (e *Engine) SetOwner(t *owner.Tracker) { e.own = t }

func (e *Engine) ownTable() *owner.Table {
	if e.own == nil {
		return nil
	}
	return e.own.Table()
}

// stillServes reports whether se's partition is still served in the
// ownership period the series was prepared under (one atomic load; called
// before every alarm write only).
func (e *Engine) stillServes(se *series) bool {
	tab := e.ownTable()
	if tab == nil {
		return true
	}
	p := tab.Partition(se.hash)
	return tab.Serves(p, time.Now().UnixNano()) && tab.Gen(p) == se.gen
}

// errMovedAll refuses a whole part: ownership was lost while it waited.
var errMovedAll = errors.New(proto.MovedReply(nil))

// pendingLoad is one alarm state to read before a part is judged.
type pendingLoad struct {
	se  *series
	idx int // in se.slots
}

// prepare finds (or creates) the series of every point of pt, drops the
// window and states of a series this judge did not own throughout, and
// reads every state not yet loaded in one pipelined round trip. A point
// whose partition is no longer served is reported moved (its series nil).
func (s *shard) prepare(ctx context.Context, pt *part, rs *rules.Set, now int64) error {
	tab := s.e.ownTable()
	pt.series = pt.series[:0]
	for i := range pt.points {
		p := &pt.points[i]
		h := pt.hashes[i]
		if tab != nil && !tab.Serves(tab.Partition(h), now) {
			pt.req.fail(pt, i, i+1, failMoved, errMovedAll)
			pt.series = append(pt.series, nil)
			continue
		}
		se := s.lookup(p, h, tab, now)
		s.want(se, p, rs)
		pt.series = append(pt.series, se)
	}
	return s.flushLoads(ctx)
}

// lookup returns p's series (created when new). When its partition's
// ownership period is not the one the series was filled under, the judge
// did not own it throughout: the window is dropped and the states must
// be read again. s.mu held.
func (s *shard) lookup(p *proto.Point, h uint64, tab *owner.Table, now int64) *series {
	e := s.e
	var gen uint64
	if tab != nil {
		gen = tab.Gen(tab.Partition(h))
	}
	s.keyBuf = proto.AppendSeriesKey(s.keyBuf[:0], p.Endpoint, p.Metric, p.Tags)
	se := s.series[string(s.keyBuf)]
	switch {
	case se == nil:
		se = &series{key: string(s.keyBuf), typ: p.Type, hash: h, gen: gen}
		se.win.Init(make([]window.Point, e.cfg.WindowSize+1))
		s.series[se.key] = se
		e.series.Add(1)
		e.m.Series.Inc()
	case se.gen != gen:
		se.win.Init(make([]window.Point, e.cfg.WindowSize+1))
		for i := range se.slots {
			se.slots[i].loaded = false
		}
		se.gen, se.rules = gen, nil
		e.m.SeriesReset.Inc()
	}
	se.lastSeen = now
	return se
}

// want queues the states of the rules matching p on se that are not
// loaded; a series whose states were prepared for rs costs nothing.
func (s *shard) want(se *series, p *proto.Point, rs *rules.Set) {
	if se.rules == rs {
		return
	}
	se.rules = rs
	for _, r := range rs.ForMetric(p.Metric) {
		if !r.Matches(p.Endpoint, p.Tags) {
			continue
		}
		i := slotIndex(se, r)
		if !se.slots[i].loaded {
			s.pend = append(s.pend, pendingLoad{se: se, idx: i})
		}
	}
}

// slotIndex returns the index of r's slot on se, adding it when missing.
func slotIndex(se *series, r *rules.Rule) int {
	for i := range se.slots {
		if se.slots[i].kind == r.Kind && se.slots[i].ruleID == r.ID {
			return i
		}
	}
	id := proto.ExpressionEventID(r.ID, se.key)
	if r.Kind == rules.Strategy {
		id = proto.StrategyEventID(r.ID, se.key)
	}
	se.slots = append(se.slots, slot{kind: r.Kind, ruleID: r.ID, id: id})
	return len(se.slots) - 1
}

// flushLoads reads the queued states in one round trip.
func (s *shard) flushLoads(ctx context.Context) error {
	if len(s.pend) == 0 {
		return nil
	}
	e := s.e
	defer func() {
		clear(s.pend)
		s.pend = s.pend[:0]
		clear(s.ids)
		s.ids = s.ids[:0]
	}()
	for _, pl := range s.pend {
		s.ids = append(s.ids, pl.se.slots[pl.idx].id)
	}
	lctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	states, err := e.store.LoadMany(lctx, s.ids)
	cancel()
	if err != nil {
		for _, pl := range s.pend {
			pl.se.rules = nil // prepare again next time
		}
		e.redisError("read alarm states", err, "states", len(s.ids), "first", s.ids[0])
		return err
	}
	for i, pl := range s.pend {
		sl := &pl.se.slots[pl.idx]
		sl.st, sl.loaded = states[i], true
		e.noteUnreadable(sl.id, sl.st)
	}
	e.m.StateLoads.Add(float64(len(states)))
	e.m.BatchLoads.Inc()
	return nil
}

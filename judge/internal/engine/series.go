package engine

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/alarm"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/window"
	"github.com/kestrel-mon/kestrel/proto"
)

// series is one series' window and its cached alarm states.
type series struct {
	key      string
	ring     window.Ring
	typ      proto.CounterType
	lastSeen int64 // wall clock, unix ns
	slots    []slot
}

// slot caches the alarm state of one rule on one series.
type slot struct {
	kind   rules.RuleKind
	ruleID int
	id     string // event id
	loaded bool
	st     alarm.State
}

type shard struct {
	e      *Engine
	mu     sync.Mutex
	series map[string]*series
	ch     chan *part
	keyBuf []byte
	vals   []float64
	ts     []int64
}

func (s *shard) run() {
	for pt := range s.ch {
		pt.req.finish(s.processPart(pt))
	}
}

func (s *shard) processPart(pt *part) error {
	rs := s.e.rules.Get()
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range pt.points {
		if err := s.processPoint(s.e.ctx, &pt.points[i], rs, now); err != nil {
			return err
		}
	}
	return nil
}

// processPoint stages p, evaluates the rules and commits p only when every
// alarm write succeeded. s.mu is held.
func (s *shard) processPoint(ctx context.Context, p *proto.Point, rs *rules.Set, now int64) error {
	e := s.e
	s.keyBuf = proto.AppendSeriesKey(s.keyBuf[:0], p.Endpoint, p.Metric, p.Tags)
	se := s.series[string(s.keyBuf)]
	if se == nil {
		se = &series{key: string(s.keyBuf), typ: p.Type}
		se.ring.Init(make([]window.Point, e.cfg.WindowSize+1))
		s.series[se.key] = se
		e.series.Add(1)
		e.m.Series.Inc()
	}
	se.lastSeen = now
	if !se.ring.Accepts(p.Timestamp) {
		e.m.IgnoredNotNewer.Inc()
		return nil
	}
	undo := se.ring.Push(window.Point{TS: p.Timestamp, Value: p.Value})
	oldType := se.typ
	se.typ = p.Type
	if rl := rs.ForMetric(p.Metric); len(rl) > 0 {
		if err := s.evaluate(ctx, se, p, rl); err != nil {
			se.ring.Rollback(undo)
			se.typ = oldType
			return err
		}
	}
	return nil
}

func (s *shard) evaluate(ctx context.Context, se *series, p *proto.Point, rl []*rules.Rule) error {
	e := s.e
	n := -1
	for _, r := range rl {
		if !r.Matches(p.Endpoint, p.Tags) {
			continue
		}
		if n < 0 {
			if se.typ.IsRate() {
				n = se.ring.Rates(s.vals, s.ts)
			} else {
				n = se.ring.Values(s.vals, s.ts)
			}
			e.m.PointsEvaluated.Inc()
		}
		e.m.RuleEvals.Inc()
		res, ok := r.Fn.Eval(s.vals[:n])
		if !ok {
			continue
		}
		// The oldest raw point the function used: its Used-th value, or
		// for a rate series the older point of its Used-th rate (rates
		// are stamped with the newer point of their pair).
		oldest := s.ts[res.Used-1]
		if se.typ.IsRate() {
			oldest = se.ring.At(res.Used).TS
		}
		if err := s.judge(ctx, se, p, r, res, oldest); err != nil {
			return err
		}
	}
	return nil
}

// judge runs the state machine of one rule on one series and writes the
// transition, re-deciding when another writer changed the state.
func (s *shard) judge(ctx context.Context, se *series, p *proto.Point, r *rules.Rule, res rules.Result, oldest int64) error {
	e := s.e
	sl, err := s.slot(ctx, se, r)
	if err != nil {
		return err
	}
	in := alarm.Input{Triggered: res.Triggered, MaxStep: r.MaxStep, OldestTS: oldest, PointTS: p.Timestamp, MinInterval: e.cfg.MinInterval}
	for attempt := 0; ; attempt++ {
		next, fire := alarm.Decide(sl.st, in)
		if !fire {
			return nil
		}
		if attempt == maxCASAttempts {
			return fmt.Errorf("alarm %s: state kept changing under %d attempts", sl.id, maxCASAttempts)
		}
		ev := proto.Event{ID: sl.id, Status: next.Status.String(), Endpoint: p.Endpoint, LeftValue: finite(res.Left),
			CurrentStep: next.CurrentStep, EventTime: next.EventTime, PushedTags: proto.TagsMap(p.Tags)}
		if r.Kind == rules.Strategy {
			ev.Strategy = r.Strategy
		} else {
			ev.Expression = r.Expression
		}
		body, err := proto.MarshalEvent(&ev)
		if err != nil {
			return fmt.Errorf("cannot encode event %s: %w", sl.id, err)
		}
		wctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		ok, stored, err := e.store.Write(wctx, &alarm.Transition{ID: sl.id, From: sl.st, To: next, Priority: r.Priority, Endpoint: p.Endpoint, Event: body})
		cancel()
		if err != nil {
			// The write may or may not have happened: reload next time.
			sl.loaded = false
			e.m.RedisErrors.Inc()
			return err
		}
		if ok {
			sl.st = next
			if next.Status == alarm.Problem {
				e.m.AlarmsProblem.Inc()
			} else {
				e.m.AlarmsOK.Inc()
			}
			e.log.Debug("alarm", "id", sl.id, "status", ev.Status, "step", next.CurrentStep, "eventTime", next.EventTime, "left", ev.LeftValue)
			return nil
		}
		e.m.CASConflicts.Inc()
		sl.st = stored
	}
}

// slot returns the cached state of rule r on se, loading it from Redis the
// first time.
func (s *shard) slot(ctx context.Context, se *series, r *rules.Rule) (*slot, error) {
	e := s.e
	var sl *slot
	for i := range se.slots {
		if se.slots[i].kind == r.Kind && se.slots[i].ruleID == r.ID {
			sl = &se.slots[i]
			break
		}
	}
	if sl == nil {
		id := proto.ExpressionEventID(r.ID, se.key)
		if r.Kind == rules.Strategy {
			id = proto.StrategyEventID(r.ID, se.key)
		}
		se.slots = append(se.slots, slot{kind: r.Kind, ruleID: r.ID, id: id})
		sl = &se.slots[len(se.slots)-1]
	}
	if !sl.loaded {
		lctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		st, err := e.store.Load(lctx, sl.id)
		cancel()
		if err != nil {
			e.m.RedisErrors.Inc()
			return nil, err
		}
		e.m.StateLoads.Inc()
		sl.st, sl.loaded = st, true
	}
	return sl, nil
}

func finite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}

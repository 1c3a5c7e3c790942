package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/kestrel-mon/kestrel/judge/internal/alarm"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/proto"
)

// maxCASAttempts bounds the decide/write loop of one alarm.
const maxCASAttempts = 8

// slot caches the alarm state of one rule on one series.
type slot struct {
	kind   rules.RuleKind
	ruleID int
	id     string // event id
	loaded bool
	st     alarm.State
}

// transition runs the state machine of one rule on one series, evaluated as of
// the point at pointTS, and writes the transition, re-deciding when another
// writer changed the state. An evaluation as of a point older than the
// state's eventTime is skipped: that state was decided from a newer point
// (a flap of late points before it is folded into it).
func (s *shard) transition(ctx context.Context, se *series, p *proto.Point, r *rules.Rule, res rules.Result, pointTS, oldest int64) error {
	e := s.e
	sl, err := s.slot(ctx, se, r)
	if err != nil {
		return err
	}
	in := alarm.Input{Triggered: res.Triggered, MaxStep: r.MaxStep, OldestTS: oldest, PointTS: pointTS, MinInterval: e.cfg.MinInterval}
	for attempt := 0; ; attempt++ {
		if sl.st.Status != alarm.None && pointTS < sl.st.EventTime {
			e.m.RuleEvalsSkipped.Inc()
			return nil
		}
		next, fire := alarm.Decide(sl.st, in)
		if !fire {
			return nil
		}
		if attempt == maxCASAttempts {
			return permanent(fmt.Errorf("alarm %s: state kept changing under %d attempts", sl.id, maxCASAttempts))
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
			return permanent(fmt.Errorf("cannot encode event %s: %w", sl.id, err))
		}
		// Ownership may have been lost since the part was prepared (a slow
		// Redis, many writes, CAS retries): a judge that no longer serves
		// the series must not write, or the new owner, which has read the
		// state after its settle period, would decide from a stale one.
		if !e.stillServes(se) {
			return errMovedAll
		}
		wctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		ok, stored, err := e.store.Write(wctx, &alarm.Transition{ID: sl.id, From: sl.st, To: next, Priority: r.Priority, Endpoint: p.Endpoint, Event: body})
		cancel()
		if err != nil {
			// The write may or may not have happened: reload next time.
			sl.loaded = false
			e.redisError("write alarm transition", err, "key", e.store.Keys().AlarmKey(sl.id), "to", next.Status.String(), "eventTime", next.EventTime)
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
		e.noteUnreadable(sl.id, stored)
	}
}

// slot returns the cached state of rule r on se, loading it from Redis the
// first time.
func (s *shard) slot(ctx context.Context, se *series, r *rules.Rule) (*slot, error) {
	e := s.e
	sl := &se.slots[slotIndex(se, r)]
	if !sl.loaded {
		// Normally prepare loaded it with the rest of the part; this is
		// the fallback after a failed write.
		lctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		st, err := e.store.Load(lctx, sl.id)
		cancel()
		if err != nil {
			e.redisError("read alarm state", err, "key", e.store.Keys().AlarmKey(sl.id))
			return nil, err
		}
		e.m.StateLoads.Inc()
		sl.st, sl.loaded = st, true
		e.noteUnreadable(sl.id, st)
	}
	return sl, nil
}

// finite makes v storable in an event's JSON (NaN and ±Inf are not).
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

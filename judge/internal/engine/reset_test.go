package engine

import (
	"reflect"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/proto"
)

const resetRules = `
strategies:
  - {id: 61, allEndpoints: true, metric: reset.m, func: "min(#1)", operator: "<", rightValue: 0, maxStep: 3, priority: 6}
  - {id: 62, allEndpoints: true, metric: reset.m, func: "all(#2)", operator: ">", rightValue: 0.5, maxStep: 3, priority: 6}
`

// A COUNTER that goes backwards (its process restarted) gives no rate for
// that interval: min(#1) < 0 does not fire, the reset is counted once, and
// a function over N rates uses the N newest valid ones. A DERIVE keeps its
// negative rate.
func TestCounterResetNoFalseAlarm(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, resetRules)
	pt := func(ep string, typ proto.CounterType, ts int64, v float64) proto.Point {
		p := gauge(ep, "reset.m", ts, v)
		p.Type = typ
		return p
	}
	// 60→120: 1/s; 120→180: down (reset); 180→240, 240→300: 1/s.
	vals := []float64{100, 160, 10, 70, 130}
	for i, v := range vals {
		ts := int64(i+1) * 60
		mustProcess(t, f.e, pt("ctr", proto.Counter, ts, v), pt("drv", proto.Derive, ts, v))
	}
	minID := func(ep string) string { return proto.StrategyEventID(61, proto.SeriesKey(ep, "reset.m", nil)) }
	allID := func(ep string) string { return proto.StrategyEventID(62, proto.SeriesKey(ep, "reset.m", nil)) }
	if evs := eventsOf(t, f.rdb, 6, minID("ctr")); len(evs) != 0 {
		t.Fatalf("counter reset fired min(#1) < 0: %v", evs)
	}
	if evs, want := eventsOf(t, f.rdb, 6, minID("drv")), []ev{{"PROBLEM", 180}, {"OK", 240}}; !reflect.DeepEqual(evs, want) {
		t.Fatalf("derive: events %v want %v", evs, want)
	}
	// all(#2) > 0.5 on the counter: at 180 there is one valid rate (not
	// evaluated), at 240 the valid rates are 240 and 120 (the older raw point
	// of the oldest is 60): PROBLEM; no repeat at 300 (180 < min_interval).
	if evs, want := eventsOf(t, f.rdb, 6, allID("ctr")), []ev{{"PROBLEM", 240}}; !reflect.DeepEqual(evs, want) {
		t.Fatalf("counter all(#2): events %v want %v", evs, want)
	}
	if n := counterValue(t, f.reg, "kestrel_judge_counter_resets_total"); n != 1 {
		t.Fatalf("counter resets %v, want 1 (the DERIVE decrease is no reset)", n)
	}
	// A late point that goes below its older neighbour is one more reset,
	// counted once although the newer points are evaluated again.
	mustProcess(t, f.e, pt("ctr", proto.Counter, 270, 5))
	if n := counterValue(t, f.reg, "kestrel_judge_counter_resets_total"); n != 2 {
		t.Fatalf("counter resets after a late reset %v, want 2", n)
	}
	if evs := eventsOf(t, f.rdb, 6, minID("ctr")); len(evs) != 0 {
		t.Fatalf("late counter reset fired min(#1) < 0: %v", evs)
	}
	// Duplicates do not count again.
	mustProcess(t, f.e, pt("ctr", proto.Counter, 270, 5), pt("ctr", proto.Counter, 180, 10))
	if n := counterValue(t, f.reg, "kestrel_judge_counter_resets_total"); n != 2 {
		t.Fatalf("counter resets after duplicates %v, want 2", n)
	}
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// lateRules: all(#1) judges each point on its own, so what late delivery
// must give is easy to state.
const lateRules = `
strategies:
  - id: 31
    allEndpoints: true
    metric: late.m
    func: "all(#1)"
    operator: ">"
    rightValue: 90
    maxStep: 3
    priority: 2
`

func lateID(ep string) string { return proto.StrategyEventID(31, proto.SeriesKey(ep, "late.m", nil)) }

// counterValue reads a counter from the engine's registry by name and
// labels (name, value pairs); 0 when absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mm := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range mm.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return mm.GetCounter().GetValue()
		}
	}
	return 0
}

// ev is an event as written, in order: status and eventTime.
type ev struct {
	Status string
	Time   int64
}

// eventsOf returns the events of alarm id in the event list of prio,
// oldest first, and checks the stream holds the same ones.
func eventsOf(t *testing.T, rdb *redis.Client, prio int, id string) []ev {
	t.Helper()
	var out []ev
	for _, m := range events(t, rdb, prio) {
		if m["id"] == id {
			out = append(out, ev{m["status"].(string), int64(m["eventTime"].(float64))})
		}
	}
	xs, err := rdb.XRange(context.Background(), "kestrel:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var fromStream []ev
	for _, x := range xs {
		if x.Values["id"] == id {
			var m map[string]any
			if err := json.Unmarshal([]byte(x.Values["event"].(string)), &m); err != nil {
				t.Fatal(err)
			}
			fromStream = append(fromStream, ev{m["status"].(string), int64(m["eventTime"].(float64))})
		}
	}
	if !reflect.DeepEqual(out, fromStream) {
		t.Fatalf("alarm %s: event list %v, stream %v", id, out, fromStream)
	}
	return out
}

func alarmHash(t *testing.T, rdb *redis.Client, id string) map[string]string {
	t.Helper()
	h, err := rdb.HGetAll(context.Background(), "kestrel:alarm:"+id).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func history(t *testing.T, e *Engine, ep, metric string) []int64 {
	t.Helper()
	h, _ := e.History(proto.SeriesKey(ep, metric, nil))
	var ts []int64
	for _, p := range h {
		ts = append(ts, p.TS)
	}
	return ts
}

func lateP(ep string, ts int64, v float64) proto.Point { return gauge(ep, "late.m", ts, v) }

// (a) A point whose request failed (Redis error) is retried after a newer
// point of its series committed: it is judged, not dropped as "not newer".
func TestLateRetriedPointIsJudged(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, lateRules)
	ctx := context.Background()
	id := lateID("h1")
	mustProcess(t, f.e, lateP("h1", 60, 1))
	// The event list holds a string: the script fails with WRONGTYPE.
	if err := f.rdb.Set(ctx, "event:p2", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Process(ctx, []proto.Point{lateP("h1", 120, 99)}); err == nil {
		t.Fatal("no error with a failing alarm write")
	}
	if got := history(t, f.e, "h1", "late.m"); !reflect.DeepEqual(got, []int64{60}) {
		t.Fatalf("failed point committed: %v", got)
	}
	if err := f.rdb.Del(ctx, "event:p2").Err(); err != nil {
		t.Fatal(err)
	}
	// A newer point of the series commits first (another request).
	mustProcess(t, f.e, lateP("h1", 180, 1))
	if evs := eventsOf(t, f.rdb, 2, id); len(evs) != 0 {
		t.Fatalf("events before the retry: %v", evs)
	}
	// The transfer retries the failed request.
	mustProcess(t, f.e, lateP("h1", 120, 99))
	want := []ev{{"PROBLEM", 120}, {"OK", 180}}
	if evs := eventsOf(t, f.rdb, 2, id); !reflect.DeepEqual(evs, want) {
		t.Fatalf("retried point: events %v want %v", evs, want)
	}
	if got := history(t, f.e, "h1", "late.m"); !reflect.DeepEqual(got, []int64{180, 120, 60}) {
		t.Fatalf("window %v", got)
	}
	if h := alarmHash(t, f.rdb, id); h["status"] != "OK" || h["eventTime"] != "180" {
		t.Fatalf("final state %v", h)
	}
	if n := counterValue(t, f.reg, "kestrel_judge_points_late_total"); n != 1 {
		t.Fatalf("late points %v", n)
	}
}

// (b) t1 ok, t2 bad, t3 ok delivered as t1, t3, t2: the PROBLEM at t2 and
// the recovery at t3 are both sent, and the alarm ends OK.
func TestLateFlapSendsProblemAndOK(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, lateRules)
	id := lateID("h2")
	mustProcess(t, f.e, lateP("h2", 60, 1), lateP("h2", 180, 1))
	mustProcess(t, f.e, lateP("h2", 120, 99))
	want := []ev{{"PROBLEM", 120}, {"OK", 180}}
	if evs := eventsOf(t, f.rdb, 2, id); !reflect.DeepEqual(evs, want) {
		t.Fatalf("events %v want %v", evs, want)
	}
	if h := alarmHash(t, f.rdb, id); h["status"] != "OK" || h["eventTime"] != "180" || h["currentStep"] != "1" {
		t.Fatalf("final state %v", h)
	}
	if n, _ := f.rdb.ZCard(context.Background(), "kestrel:alarms:active").Result(); n != 0 {
		t.Fatalf("active set holds %d", n)
	}
}

// An evaluation as of a point older than the alarm's eventTime is skipped:
// t5 bad (PROBLEM@t5), then t2 ok late: no OK@t2 and no repeat at t5. The
// point is still kept in the window.
func TestLateOlderThanEventFolded(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, lateRules)
	id := lateID("h3")
	mustProcess(t, f.e, lateP("h3", 60, 1), lateP("h3", 300, 99))
	mustProcess(t, f.e, lateP("h3", 120, 1))
	if evs := eventsOf(t, f.rdb, 2, id); !reflect.DeepEqual(evs, []ev{{"PROBLEM", 300}}) {
		t.Fatalf("events %v", evs)
	}
	if got := history(t, f.e, "h3", "late.m"); !reflect.DeepEqual(got, []int64{300, 120, 60}) {
		t.Fatalf("late point not kept: %v", got)
	}
	if n := counterValue(t, f.reg, "kestrel_judge_rule_evaluations_skipped_total"); n != 1 {
		t.Fatalf("skipped evaluations %v", n)
	}
}

// A late insertion in the middle of a full window whose alarm write fails
// is undone exactly (the dropped oldest point comes back); the retry is
// judged.
func TestLatePointRolledBackOnRedisError(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, lateRules)
	ctx := context.Background()
	id := lateID("h4")
	for ts := int64(60); ts <= 720; ts += 60 { // 12 points: the window is full
		mustProcess(t, f.e, lateP("h4", ts, 1))
	}
	before, _ := f.e.History(proto.SeriesKey("h4", "late.m", nil))
	if len(before) != 12 {
		t.Fatalf("window holds %d", len(before))
	}
	if err := f.rdb.Set(ctx, "event:p2", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.e.Process(ctx, []proto.Point{lateP("h4", 390, 99)}); err == nil {
		t.Fatal("no error with a failing alarm write")
	}
	if after, _ := f.e.History(proto.SeriesKey("h4", "late.m", nil)); !reflect.DeepEqual(after, before) {
		t.Fatalf("window not restored:\n got %v\nwant %v", after, before)
	}
	if err := f.rdb.Del(ctx, "event:p2").Err(); err != nil {
		t.Fatal(err)
	}
	mustProcess(t, f.e, lateP("h4", 390, 99))
	want := []ev{{"PROBLEM", 390}, {"OK", 420}}
	if evs := eventsOf(t, f.rdb, 2, id); !reflect.DeepEqual(evs, want) {
		t.Fatalf("events %v want %v", evs, want)
	}
	got := history(t, f.e, "h4", "late.m")
	if len(got) != 12 || got[0] != 720 || got[5] != 420 || got[6] != 390 || got[11] != 120 {
		t.Fatalf("window after the retry %v", got)
	}
}

// (d) A point older than a full window is counted as too_old, a repeated
// timestamp as duplicate (the first value kept); neither is judged. While
// the window is not full, a point older than all is inserted and judged.
func TestTooOldAndDuplicateNotJudged(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, lateRules)
	id := lateID("h5")
	mustProcess(t, f.e, lateP("h5", 600, 1))
	mustProcess(t, f.e, lateP("h5", 300, 99)) // older than all, window not full
	want := []ev{{"PROBLEM", 300}, {"OK", 600}}
	if evs := eventsOf(t, f.rdb, 2, id); !reflect.DeepEqual(evs, want) {
		t.Errorf("oldest point in a window not full: events %v want %v", evs, want)
	}
	for ts := int64(660); ts <= 1200; ts += 60 { // 12 points from 300 to 1200
		mustProcess(t, f.e, lateP("h5", ts, 1))
	}
	before := history(t, f.e, "h5", "late.m")
	if len(before) != 12 || before[11] != 300 {
		t.Errorf("window %v", before)
	}
	mustProcess(t, f.e, lateP("h5", 240, 99))  // older than the full window
	mustProcess(t, f.e, lateP("h5", 900, 99))  // held: duplicate
	mustProcess(t, f.e, lateP("h5", 1200, 99)) // the newest: duplicate
	if n := counterValue(t, f.reg, "kestrel_judge_points_ignored_total", "reason", "too_old"); n != 1 {
		t.Errorf("too_old %v", n)
	}
	if n := counterValue(t, f.reg, "kestrel_judge_points_ignored_total", "reason", "duplicate"); n != 2 {
		t.Errorf("duplicate %v", n)
	}
	if evs := eventsOf(t, f.rdb, 2, id); !reflect.DeepEqual(evs, want) {
		t.Errorf("an ignored point was judged: %v", evs)
	}
	h, _ := f.e.History(proto.SeriesKey("h5", "late.m", nil))
	if got := history(t, f.e, "h5", "late.m"); !reflect.DeepEqual(got, before) {
		t.Fatalf("window changed: %v", got)
	}
	for _, p := range h {
		if (p.TS == 900 || p.TS == 1200) && p.Value != 1 {
			t.Fatalf("the first value of %d was replaced: %v", p.TS, p.Value)
		}
	}
}

// shuffleRules: several functions over a gauge, a COUNTER and a DERIVE
// series (each rule on the metric of its series).
const shuffleRules = `
strategies:
  - {id: 51, allEndpoints: true, metric: shuf.g, func: "all(#2)", operator: ">", rightValue: 50, maxStep: 3, priority: 3}
  - {id: 52, allEndpoints: true, metric: shuf.g, func: "max(#3)", operator: ">", rightValue: 85, maxStep: 3, priority: 3}
  - {id: 53, allEndpoints: true, metric: shuf.g, func: "diff(#1)", operator: "<", rightValue: -30, maxStep: 3, priority: 3}
  - {id: 54, allEndpoints: true, metric: shuf.g, func: "lookup(#2,3)", operator: "<", rightValue: 30, maxStep: 3, priority: 3}
  - {id: 55, allEndpoints: true, metric: shuf.g, func: "avg(#3)", operator: ">", rightValue: 60, maxStep: 1, priority: 3}
  - {id: 56, allEndpoints: true, metric: shuf.c, func: "all(#1)", operator: ">", rightValue: 5, maxStep: 3, priority: 3}
  - {id: 57, allEndpoints: true, metric: shuf.c, func: "min(#2)", operator: "<", rightValue: 2, maxStep: 3, priority: 3}
  - {id: 58, allEndpoints: true, metric: shuf.d, func: "diff(#1)", operator: ">", rightValue: 3, maxStep: 3, priority: 3}
  - {id: 59, allEndpoints: true, metric: shuf.d, func: "all(#2)", operator: "<", rightValue: 0, maxStep: 3, priority: 3}
`

// (c) The points of a series delivered in any order (within the window)
// end in the same alarm state as in order, and a PROBLEM or recovery sent
// in order is never missing altogether.
func TestShuffledSameFinalState(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, shuffleRules)
	rng := rand.New(rand.NewPCG(7, 11))
	const n = 12 // the window's capacity (size 11 + 1): nothing is too old
	type kind struct {
		metric string
		typ    proto.CounterType
		ids    []int
	}
	kinds := []kind{
		{"shuf.g", proto.Gauge, []int{51, 52, 53, 54, 55}},
		{"shuf.c", proto.Counter, []int{56, 57}},
		{"shuf.d", proto.Derive, []int{58, 59}},
	}
	ctx := context.Background()
	finals := map[string]int{} // in-order final statuses seen
	for round := range 8 {
		for _, k := range kinds {
			vals := make([]float64, n)
			v := 1000.0
			for i := range vals {
				switch k.typ {
				case proto.Gauge:
					vals[i] = float64(rng.IntN(101))
				case proto.Counter:
					v += float64(rng.IntN(600)) // 0..10/s over 60 s
					if rng.IntN(5) == 0 {
						v = float64(rng.IntN(100)) // reset
					}
					vals[i] = v
				default:
					v += float64(rng.IntN(900) - 450)
					vals[i] = v
				}
			}
			pts := func(ep string, order []int) []proto.Point {
				out := make([]proto.Point, len(order))
				for i, j := range order {
					out[i] = gauge(ep, k.metric, int64(j+1)*60, vals[j])
					out[i].Type = k.typ
				}
				return out
			}
			inorder := fmt.Sprintf("in%d", round)
			ord := make([]int, n)
			for i := range ord {
				ord[i] = i
			}
			if err := f.e.Process(ctx, pts(inorder, ord)); err != nil {
				t.Fatal(err)
			}
			for perm := range 6 {
				ep := fmt.Sprintf("r%dp%d", round, perm)
				rng.Shuffle(n, func(i, j int) { ord[i], ord[j] = ord[j], ord[i] })
				if err := f.e.Process(ctx, pts(ep, ord)); err != nil {
					t.Fatal(err)
				}
				for _, rid := range k.ids {
					wantID := proto.StrategyEventID(rid, proto.SeriesKey(inorder, k.metric, nil))
					gotID := proto.StrategyEventID(rid, proto.SeriesKey(ep, k.metric, nil))
					want, got := alarmHash(t, f.rdb, wantID)["status"], alarmHash(t, f.rdb, gotID)["status"]
					wantEv, gotEv := eventsOf(t, f.rdb, 3, wantID), eventsOf(t, f.rdb, 3, gotID)
					desc := fmt.Sprintf("%s rule %d values %v order %v: in order %v, shuffled %v", k.metric, rid, vals, ord, wantEv, gotEv)
					// With no event in order, the shuffled run may have
					// seen a passing PROBLEM on partial data and ended OK.
					finals[want]++
					if want == "" && got == "OK" {
						got = ""
					}
					if got != want {
						t.Errorf("final status %q want %q: %s", got, want, desc)
					}
					if has(wantEv, "PROBLEM") && !has(gotEv, "PROBLEM") {
						t.Errorf("no PROBLEM when shuffled: %s", desc)
					}
				}
			}
		}
	}
	t.Logf("in-order final statuses: %v", finals)
	if finals["PROBLEM"] == 0 || finals["OK"] == 0 {
		t.Fatalf("the data did not exercise both PROBLEM and OK endings: %v", finals)
	}
}

func has(evs []ev, status string) bool {
	for _, e := range evs {
		if e.Status == status {
			return true
		}
	}
	return false
}

// BenchmarkBatchLate: 1000 series, one matching rule, every other point
// one step late (t+120 then t+60): the late path inserts, saves the window
// and evaluates twice, allocation free.
func BenchmarkBatchLate(b *testing.B) {
	r := redistest.Start(b)
	f := newEngine(b, r.Addr, cpuRules)
	pts := benchBatch(1000, "demo.load")
	ctx := context.Background()
	ts := int64(0)
	step := func() {
		ts += 120
		for _, d := range []int64{ts, ts - 60} {
			for i := range pts {
				pts[i].Timestamp = d
			}
			if err := f.e.Process(ctx, pts); err != nil {
				b.Fatal(err)
			}
		}
	}
	for range 12 {
		step()
	}
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*len(pts)), "ns/point")
}

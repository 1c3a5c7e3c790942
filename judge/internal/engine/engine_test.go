package engine

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/alarm"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

const cpuRules = `
strategies:
  - id: 15
    endpoints: [host01, host02]
    metric: cpu.idle
    tags: {}
    func: "all(#3)"
    operator: "<"
    rightValue: 5
    maxStep: 3
    priority: 0
    note: cpu idle too low
    tpl: {id: 2, name: sa.base, parentId: 0, actionId: 2, creator: root}
  - id: 20
    allEndpoints: true
    metric: muted.metric
    func: "all(#1)"
    operator: ">"
    rightValue: 0
    maxStep: 0
    priority: 1
expressions:
  - id: 1
    metric: demo.load
    tags: {app: web}
    func: "all(#3)"
    operator: ">"
    rightValue: 90
    maxStep: 3
    priority: 4
    note: demo load too high
    actionId: 7
  - id: 2
    metric: net.in
    func: "all(#2)"
    operator: ">"
    rightValue: 10
    maxStep: 3
    priority: 5
    note: rate too high
    actionId: 1
`

type fixture struct {
	e   *Engine
	m   *Metrics
	reg *prometheus.Registry // m's
	rdb *redis.Client
}

func newEngine(t testing.TB, addr, rulesYAML string) fixture {
	t.Helper()
	rs, err := rules.Parse([]byte(rulesYAML), 11)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	store := alarm.NewStore(rdb, alarm.Keys{Prefix: "kestrel:", EventListFormat: "event:p%d", EventListLen: 100, StreamKey: "kestrel:events", StreamMaxLen: 100})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	e := New(Config{WindowSize: 11, IdleEvict: time.Hour, MinInterval: 300, Workers: 4, QueueLen: 4, OpTimeout: time.Second},
		rules.HolderOf(rs), store, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return fixture{e: e, m: m, reg: reg, rdb: rdb}
}

func gauge(ep, metric string, ts int64, v float64, tags ...proto.Tag) proto.Point {
	return proto.Point{Endpoint: ep, Metric: metric, Timestamp: ts, Value: v, Type: proto.Gauge, Step: 60, Tags: tags}
}

func mustProcess(t *testing.T, e *Engine, pts ...proto.Point) {
	t.Helper()
	if err := e.Process(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
}

func events(t *testing.T, rdb *redis.Client, prio int) []map[string]any {
	t.Helper()
	raw, err := rdb.LRange(context.Background(), proto.EventListKey("", prio), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for i := len(raw) - 1; i >= 0; i-- { // oldest first
		var m map[string]any
		if err := json.Unmarshal([]byte(raw[i]), &m); err != nil {
			t.Fatalf("event is not JSON: %v: %s", err, raw[i])
		}
		out = append(out, m)
	}
	return out
}

const cpuID = "s_15_d2a3cf076e6613a23a3a010c6e6d647a"

func TestStrategyEventInRedis(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	ctx := context.Background()
	mustProcess(t, f.e, gauge("host01", "cpu.idle", 1431349620, 3), gauge("host01", "cpu.idle", 1431349680, 2))
	if n := len(events(t, f.rdb, 0)); n != 0 {
		t.Fatalf("%d events before 3 points", n)
	}
	mustProcess(t, f.e, gauge("host01", "cpu.idle", 1431349740, 1.2))
	evs := events(t, f.rdb, 0)
	if len(evs) != 1 {
		t.Fatalf("want 1 event, got %d", len(evs))
	}
	ev := evs[0]
	want := map[string]any{
		"id": cpuID, "status": "PROBLEM", "endpoint": "host01", "leftValue": 1.2,
		"currentStep": float64(1), "eventTime": float64(1431349740), "expression": nil,
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("event[%q] = %#v want %#v", k, ev[k], v)
		}
	}
	if pt, ok := ev["pushedTags"].(map[string]any); !ok || len(pt) != 0 {
		t.Errorf("pushedTags = %#v, want {}", ev["pushedTags"])
	}
	st, ok := ev["strategy"].(map[string]any)
	if !ok {
		t.Fatalf("strategy = %#v", ev["strategy"])
	}
	wantS := map[string]any{"id": float64(15), "metric": "cpu.idle", "func": "all(#3)", "operator": "<", "rightValue": float64(5),
		"maxStep": float64(3), "priority": float64(0), "note": "cpu idle too low"}
	for k, v := range wantS {
		if st[k] != v {
			t.Errorf("strategy[%q] = %#v want %#v", k, st[k], v)
		}
	}
	if tg, ok := st["tags"].(map[string]any); !ok || len(tg) != 0 {
		t.Errorf("strategy.tags = %#v, want {}", st["tags"])
	}
	tpl, ok := st["tpl"].(map[string]any)
	if !ok {
		t.Fatalf("tpl = %#v, want an object", st["tpl"])
	}
	wantT := map[string]any{"id": float64(2), "name": "sa.base", "parentId": float64(0), "actionId": float64(2), "creator": "root"}
	for k, v := range wantT {
		if tpl[k] != v {
			t.Errorf("tpl[%q] = %#v want %#v", k, tpl[k], v)
		}
	}
	if len(ev) != 9 || len(st) != 10 || len(tpl) != 5 {
		t.Errorf("unexpected key counts: event %d strategy %d tpl %d", len(ev), len(st), len(tpl))
	}
	// The stream carries the same JSON with id/status/priority/endpoint.
	xs, err := f.rdb.XRange(ctx, "kestrel:events", "-", "+").Result()
	if err != nil || len(xs) != 1 {
		t.Fatalf("stream: %v %v", xs, err)
	}
	raw, _ := f.rdb.LIndex(ctx, "event:p0", 0).Result()
	x := xs[0].Values
	if x["id"] != cpuID || x["status"] != "PROBLEM" || x["priority"] != "0" || x["endpoint"] != "host01" || x["event"] != raw {
		t.Errorf("stream entry %v", x)
	}
	h, _ := f.rdb.HGetAll(ctx, "kestrel:alarm:"+cpuID).Result()
	if h["status"] != "PROBLEM" || h["currentStep"] != "1" || h["eventTime"] != "1431349740" || h["priority"] != "0" {
		t.Errorf("alarm hash %v", h)
	}
	if sc, err := f.rdb.ZScore(ctx, "kestrel:alarms:active", cpuID).Result(); err != nil || sc != 1431349740 {
		t.Errorf("active score %v %v", sc, err)
	}
	// Recovery: OK, removed from the active set.
	mustProcess(t, f.e, gauge("host01", "cpu.idle", 1431349800, 50))
	evs = events(t, f.rdb, 0)
	if len(evs) != 2 || evs[1]["status"] != "OK" || evs[1]["currentStep"] != float64(1) || evs[1]["leftValue"] != float64(50) {
		t.Fatalf("recovery events %v", evs)
	}
	if n, _ := f.rdb.ZCard(ctx, "kestrel:alarms:active").Result(); n != 0 {
		t.Errorf("active set has %d after recovery", n)
	}
	if got := testutil.ToFloat64(f.m.AlarmsProblem) + testutil.ToFloat64(f.m.AlarmsOK); got != 2 {
		t.Errorf("alarms written metric %v", got)
	}
}

func TestExpressionEvent(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	tags := []proto.Tag{{Key: "app", Value: "web"}, {Key: "dc", Value: "x"}}
	for i := int64(0); i < 3; i++ {
		mustProcess(t, f.e, gauge("h9", "demo.load", 600+60*i, 95, tags...))
	}
	evs := events(t, f.rdb, 4)
	if len(evs) != 1 {
		t.Fatalf("want 1 event got %d", len(evs))
	}
	ev := evs[0]
	key := proto.SeriesKey("h9", "demo.load", tags)
	if ev["id"] != proto.ExpressionEventID(1, key) || ev["strategy"] != nil {
		t.Errorf("id/strategy: %v %v", ev["id"], ev["strategy"])
	}
	x, ok := ev["expression"].(map[string]any)
	if !ok || x["actionId"] != float64(7) || x["id"] != float64(1) || x["priority"] != float64(4) {
		t.Fatalf("expression %#v", ev["expression"])
	}
	if tg := x["tags"].(map[string]any); tg["app"] != "web" || len(tg) != 1 {
		t.Errorf("expression tags %v", tg)
	}
	if pt := ev["pushedTags"].(map[string]any); pt["app"] != "web" || pt["dc"] != "x" || len(pt) != 2 {
		t.Errorf("pushedTags %v", pt)
	}
	// Points of other tags do not match.
	for i := int64(0); i < 3; i++ {
		mustProcess(t, f.e, gauge("h9", "demo.load", 600+60*i, 95, proto.Tag{Key: "app", Value: "db"}))
	}
	if len(events(t, f.rdb, 4)) != 1 {
		t.Error("non-matching tags raised an event")
	}
}

func TestStateMachineOverPoints(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	ts := int64(6000)
	next := func(v float64) { ts += 60; mustProcess(t, f.e, gauge("host02", "cpu.idle", ts, v)) }
	for range 3 {
		next(1)
	}
	if n := len(events(t, f.rdb, 0)); n != 1 {
		t.Fatalf("want first PROBLEM, got %d events", n)
	}
	first := ts
	// Still triggered: no repeat before min_interval (300 s of point time)
	// and until the 3 points used are all newer than the last event.
	for ts < first+240 {
		next(1)
	}
	if n := len(events(t, f.rdb, 0)); n != 1 {
		t.Fatalf("repeat before min_interval: %d events", n)
	}
	next(1) // ts = first+300, oldest used = first+180 > first
	evs := events(t, f.rdb, 0)
	if len(evs) != 2 || evs[1]["currentStep"] != float64(2) || evs[1]["eventTime"] != float64(first+300) {
		t.Fatalf("want repeat step 2 at %d: %v", first+300, evs)
	}
	for range 5 {
		next(1)
	}
	evs = events(t, f.rdb, 0)
	if len(evs) != 3 || evs[2]["currentStep"] != float64(3) {
		t.Fatalf("want step 3: %v", evs)
	}
	for range 20 { // maxStep 3 reached
		next(1)
	}
	if n := len(events(t, f.rdb, 0)); n != 3 {
		t.Fatalf("events beyond maxStep: %d", n)
	}
	next(90)
	evs = events(t, f.rdb, 0)
	if len(evs) != 4 || evs[3]["status"] != "OK" || evs[3]["currentStep"] != float64(1) {
		t.Fatalf("want OK: %v", evs[len(evs)-1])
	}
	// A fresh problem starts again at step 1.
	for range 3 {
		next(1)
	}
	evs = events(t, f.rdb, 0)
	if len(evs) != 5 || evs[4]["currentStep"] != float64(1) || evs[4]["status"] != "PROBLEM" {
		t.Fatalf("want new PROBLEM step 1: %v", evs[len(evs)-1])
	}
	// Timestamps the window holds are ignored (the first value is kept).
	before := testutil.ToFloat64(f.m.IgnoredDuplicate)
	mustProcess(t, f.e, gauge("host02", "cpu.idle", ts, 99), gauge("host02", "cpu.idle", ts-600, 99))
	if got := testutil.ToFloat64(f.m.IgnoredDuplicate) - before; got != 2 {
		t.Fatalf("ignored %v", got)
	}
	if n := len(events(t, f.rdb, 0)); n != 5 {
		t.Fatal("an ignored point changed the alarm")
	}
}

func TestMutedRule(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	for i := int64(1); i <= 5; i++ {
		mustProcess(t, f.e, gauge("h", "muted.metric", i*60, 5))
	}
	if n := len(events(t, f.rdb, 1)); n != 0 {
		t.Fatalf("muted rule wrote %d events", n)
	}
}

func TestRateSeries(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	ctr := func(ts int64, v float64) proto.Point {
		p := gauge("h", "net.in", ts, v)
		p.Type = proto.Counter
		return p
	}
	// all(#2) > 10 on rates: needs 3 raw points.
	mustProcess(t, f.e, ctr(60, 0), ctr(120, 1200))
	if n := len(events(t, f.rdb, 5)); n != 0 {
		t.Fatal("judged with one rate")
	}
	mustProcess(t, f.e, ctr(180, 2400)) // rates 20, 20
	evs := events(t, f.rdb, 5)
	if len(evs) != 1 || evs[0]["leftValue"] != float64(20) {
		t.Fatalf("rate event %v", evs)
	}
	mustProcess(t, f.e, ctr(300, 2460)) // rate 0.5 over 120 s
	evs = events(t, f.rdb, 5)
	if len(evs) != 2 || evs[1]["status"] != "OK" || evs[1]["leftValue"] != 0.5 {
		t.Fatalf("rate recovery %v", evs)
	}
	hist, ok := f.e.History(proto.SeriesKey("h", "net.in", nil))
	if !ok || len(hist) != 4 || hist[0].Value != 2460 {
		t.Fatalf("raw points kept: %v", hist)
	}
}

// A rate is computed from two raw points, so the oldest point a function
// over N rates used is the (N+1)-th newest raw point. A repeat PROBLEM
// needs every one of them newer than the last event: here the point the
// first event fired on (180) is still the older half of the oldest rate
// at 480, so there is no repeat then, only at 540.
func TestRateSeriesRepeatNeedsFreshPoints(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	ctr := func(ts int64, v float64) proto.Point {
		p := gauge("h", "net.in", ts, v)
		p.Type = proto.Derive
		return p
	}
	// all(#2) > 10 on rates of 20/s.
	mustProcess(t, f.e, ctr(60, 0), ctr(120, 1200), ctr(180, 2400))
	evs := events(t, f.rdb, 5)
	if len(evs) != 1 || evs[0]["eventTime"] != float64(180) || evs[0]["currentStep"] != float64(1) {
		t.Fatalf("want the first PROBLEM at 180: %v", evs)
	}
	// 480 is min_interval (300 s) after the event, but all(#2) uses the
	// rates 240→480 and 180→240: raw point 180 was used by the last event.
	mustProcess(t, f.e, ctr(240, 3600), ctr(480, 3600+20*240))
	if evs := events(t, f.rdb, 5); len(evs) != 1 {
		t.Fatalf("repeat PROBLEM reused the point of the last event: %v", evs[len(evs)-1])
	}
	// At 540 the raw points used are 540, 480, 240: all fresh.
	mustProcess(t, f.e, ctr(540, 3600+20*300))
	evs = events(t, f.rdb, 5)
	if len(evs) != 2 || evs[1]["currentStep"] != float64(2) || evs[1]["eventTime"] != float64(540) {
		t.Fatalf("want the repeat at step 2 at 540: %v", evs)
	}
}

func TestRedeliveredPointNoDuplicate(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	batch := []proto.Point{gauge("host01", "cpu.idle", 60, 1), gauge("host01", "cpu.idle", 120, 1), gauge("host01", "cpu.idle", 180, 1)}
	mustProcess(t, f.e, batch...)
	mustProcess(t, f.e, batch...) // redelivery: ignored (duplicates)
	if n := len(events(t, f.rdb, 0)); n != 1 {
		t.Fatalf("%d events", n)
	}
	// A second judge (empty windows, empty cache) gets the same batch.
	g := newEngine(t, r.Addr, cpuRules)
	mustProcess(t, g.e, batch...)
	if n := len(events(t, f.rdb, 0)); n != 1 {
		t.Fatalf("redelivery to a fresh judge duplicated: %d events", n)
	}
}

func TestTwoJudgesOneSeries(t *testing.T) {
	r := redistest.Start(t)
	a := newEngine(t, r.Addr, cpuRules)
	b := newEngine(t, r.Addr, cpuRules)
	// Both evaluate the rule untriggered first, so both caches hold "no state".
	for _, f := range []fixture{a, b} {
		for i := int64(1); i <= 3; i++ {
			mustProcess(t, f.e, gauge("host01", "cpu.idle", i*60, 50))
		}
	}
	for i := int64(4); i <= 6; i++ {
		mustProcess(t, a.e, gauge("host01", "cpu.idle", i*60, 1))
	}
	for i := int64(4); i <= 6; i++ {
		mustProcess(t, b.e, gauge("host01", "cpu.idle", i*60, 1)) // stale cache: CAS refuses, re-decides
	}
	if n := len(events(t, a.rdb, 0)); n != 1 {
		t.Fatalf("two judges wrote %d events", n)
	}
	if c := testutil.ToFloat64(b.m.CASConflicts); c != 1 {
		t.Fatalf("cas conflicts %v", c)
	}
	// Recovery seen by both: exactly one OK.
	mustProcess(t, a.e, gauge("host01", "cpu.idle", 420, 50))
	mustProcess(t, b.e, gauge("host01", "cpu.idle", 420, 50))
	evs := events(t, a.rdb, 0)
	if len(evs) != 2 || evs[1]["status"] != "OK" {
		t.Fatalf("events %v", evs)
	}
}

func TestRestartedJudge(t *testing.T) {
	r := redistest.Start(t)
	a := newEngine(t, r.Addr, cpuRules)
	for i := int64(1); i <= 3; i++ {
		mustProcess(t, a.e, gauge("host01", "cpu.idle", i*60, 1))
	}
	// A new judge (new cache, empty windows) keeps judging the open alarm.
	b := newEngine(t, r.Addr, cpuRules)
	for i := int64(4); i <= 6; i++ {
		mustProcess(t, b.e, gauge("host01", "cpu.idle", i*60, 1))
	}
	if n := len(events(t, a.rdb, 0)); n != 1 {
		t.Fatalf("restarted judge re-fired: %d events", n)
	}
	for i := int64(7); i <= 9; i++ {
		mustProcess(t, b.e, gauge("host01", "cpu.idle", i*60, 80))
	}
	evs := events(t, a.rdb, 0)
	if len(evs) != 2 || evs[1]["status"] != "OK" {
		t.Fatalf("restarted judge lost the recovery: %v", evs)
	}
}

func TestRedisDownNotCommitted(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	ctx := context.Background()
	mustProcess(t, f.e, gauge("host01", "cpu.idle", 60, 1), gauge("host01", "cpu.idle", 120, 1))
	r.Stop()
	batch := []proto.Point{gauge("host01", "cpu.idle", 180, 1), gauge("other", "no.rule", 180, 1)}
	err := f.e.Process(ctx, batch)
	if err == nil {
		t.Fatal("no error with Redis down")
	}
	if testutil.ToFloat64(f.m.RedisErrors) == 0 {
		t.Error("redis error not counted")
	}
	hist, _ := f.e.History(proto.SeriesKey("host01", "cpu.idle", nil))
	if len(hist) != 2 || hist[0].TS != 120 {
		t.Fatalf("window committed after a failed write: %v", hist)
	}
	r.Start() // empty Redis again (no persistence)
	mustProcess(t, f.e, batch...)
	if n := len(events(t, f.rdb, 0)); n != 1 {
		t.Fatalf("retry produced %d events", n)
	}
}

func TestSubmitAndReply(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, cpuRules)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.e.Start(ctx)
	var pts []proto.Point
	for i := int64(1); i <= 3; i++ {
		for _, h := range []string{"host01", "host02", "h3", "h4", "h5"} {
			pts = append(pts, gauge(h, "cpu.idle", i*60, 1, proto.Tag{Key: "k", Value: h}))
		}
	}
	pts = append(pts, gauge("host01", "cpu.idle", 180, 1))
	done := make(chan error, 3)
	f.e.Submit(proto.EncodeBatch(pts[:5]), func(err error) { done <- err })
	f.e.Submit(proto.EncodeBatch(pts[5:]), func(err error) { done <- err })
	f.e.Submit([]byte("garbage"), func(err error) { done <- err })
	var errs []error
	for range 3 {
		errs = append(errs, <-done)
	}
	bad := 0
	for _, err := range errs {
		if err != nil {
			if !strings.Contains(err.Error(), "decode") {
				t.Fatalf("unexpected error %v", err)
			}
			bad++
		}
	}
	if bad != 1 {
		t.Fatalf("errors %v", errs)
	}
	// host01 and host02 with tag k: 2 events; the untagged host01 series has 1 point.
	if n := len(events(t, f.rdb, 0)); n != 2 {
		t.Fatalf("%d events", n)
	}
	if f.e.SeriesCount() != 6 {
		t.Fatalf("series %d", f.e.SeriesCount())
	}
	f.e.Stop()
	refused := make(chan error, 1)
	f.e.Submit(proto.EncodeBatch(pts[:1]), func(err error) { refused <- err })
	if err := <-refused; err == nil {
		t.Fatal("submit after stop accepted")
	}
	if n := f.e.Sweep(time.Now().Add(2 * time.Hour)); n != 6 || f.e.SeriesCount() != 0 {
		t.Fatalf("sweep evicted %d, left %d", n, f.e.SeriesCount())
	}
}

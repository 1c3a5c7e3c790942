package engine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/owner"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const moveRules = `
strategies:
  - id: 1
    allEndpoints: true
    metric: one.point
    func: "all(#1)"
    operator: "<"
    rightValue: 5
    maxStep: 1
    priority: 2
  - id: 3
    allEndpoints: true
    metric: three.points
    func: "all(#3)"
    operator: "<"
    rightValue: 5
    maxStep: 3
    priority: 3
`

var ringCfg = ring.Config{PartitionCount: 31, ReplicationFactor: 20, Load: 1.25}

func ringOf(t *testing.T, members ...string) *ring.Ring {
	t.Helper()
	r, err := ring.New(members, ringCfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// judgeNode is one engine with its own ownership tracker.
type judgeNode struct {
	fixture
	tr *owner.Tracker
}

func newNode(t *testing.T, addr, name string, settle time.Duration) judgeNode {
	f := newEngine(t, addr, moveRules)
	tr := owner.New(name, settle)
	f.e.SetOwner(tr)
	return judgeNode{fixture: f, tr: tr}
}

// moveTo gives every series to the one member of r on every node.
func moveTo(r *ring.Ring, nodes ...judgeNode) {
	for _, n := range nodes {
		n.tr.Apply(r, time.Now())
	}
}

func state(t *testing.T, f fixture, id string) map[string]string {
	t.Helper()
	m, err := f.rdb.HGetAll(context.Background(), "kestrel:alarm:"+id).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func statuses(t *testing.T, f fixture, prio int) []string {
	var out []string
	for _, ev := range events(t, f.rdb, prio) {
		out = append(out, ev["status"].(string))
	}
	return out
}

// A caches "no alarm"; the series moves to B and goes bad; back on A after
// it recovered, A must see the PROBLEM in Redis and write the recovery.
func TestMovedAwayAndBackNoMissedRecovery(t *testing.T) {
	r := redistest.Start(t)
	a, b := newNode(t, r.Addr, "a", 0), newNode(t, r.Addr, "b", 0)
	moveTo(ringOf(t, "a"), a, b)
	mustProcess(t, a.e, gauge("h1", "one.point", 60, 50))
	moveTo(ringOf(t, "b"), a, b)
	if err := a.e.Process(context.Background(), []proto.Point{gauge("h1", "one.point", 120, 1)}); err == nil {
		t.Fatal("a judged a series it does not own")
	}
	mustProcess(t, b.e, gauge("h1", "one.point", 120, 1))
	moveTo(ringOf(t, "a"), a, b)
	mustProcess(t, a.e, gauge("h1", "one.point", 180, 50))
	id := proto.StrategyEventID(1, "h1/one.point")
	if st := state(t, a.fixture, id); st["status"] != "OK" {
		t.Fatalf("alarm left in %v after the recovery was judged by its old owner", st)
	}
	if got := statuses(t, a.fixture, 2); len(got) != 2 || got[0] != "PROBLEM" || got[1] != "OK" {
		t.Fatalf("events %v, want PROBLEM then OK", got)
	}
	if n := testutil.ToFloat64(a.m.SeriesReset); n != 1 {
		t.Fatalf("series resets %v, want 1", n)
	}
}

// A caches PROBLEM at currentStep == maxStep; B recovers it; back on A it
// goes bad again: A must fire.
func TestMovedAwayAndBackNoMissedProblem(t *testing.T) {
	r := redistest.Start(t)
	a, b := newNode(t, r.Addr, "a", 0), newNode(t, r.Addr, "b", 0)
	moveTo(ringOf(t, "a"), a, b)
	mustProcess(t, a.e, gauge("h1", "one.point", 60, 1))
	moveTo(ringOf(t, "b"), a, b)
	mustProcess(t, b.e, gauge("h1", "one.point", 120, 50))
	moveTo(ringOf(t, "a"), a, b)
	mustProcess(t, a.e, gauge("h1", "one.point", 180, 1))
	if got := statuses(t, a.fixture, 2); len(got) != 3 || got[2] != "PROBLEM" {
		t.Fatalf("events %v, want PROBLEM OK PROBLEM", got)
	}
	id := proto.StrategyEventID(1, "h1/one.point")
	if st := state(t, a.fixture, id); st["status"] != "PROBLEM" || st["eventTime"] != "180" {
		t.Fatalf("state %v", st)
	}
}

// Points A kept from before it lost the series must not be mixed with new
// ones: all(#3) does not fire on one new bad point.
func TestMovedAwayAndBackWindowDropped(t *testing.T) {
	r := redistest.Start(t)
	a, b := newNode(t, r.Addr, "a", 0), newNode(t, r.Addr, "b", 0)
	moveTo(ringOf(t, "a"), a, b)
	mustProcess(t, a.e, gauge("h1", "three.points", 60, 1), gauge("h1", "three.points", 120, 1))
	moveTo(ringOf(t, "b"), a, b)
	for ts := int64(3600); ts <= 7200; ts += 60 {
		mustProcess(t, b.e, gauge("h1", "three.points", ts, 50))
	}
	moveTo(ringOf(t, "a"), a, b)
	mustProcess(t, a.e, gauge("h1", "three.points", 7260, 1))
	if got := statuses(t, a.fixture, 3); len(got) != 0 {
		t.Fatalf("all(#3) fired on one new point and two hours-old ones: %v", got)
	}
	h, ok := a.e.History("h1/three.points")
	if !ok || len(h) != 1 || h[0].TS != 7260 {
		t.Fatalf("window after regaining: %v", h)
	}
}

// A request mixing owned and not owned series: the owned points are
// judged, the others refused with a MOVED bitmap naming exactly them; a
// partition gained less than the settle period ago is refused too.
func TestSubmitRefusesWhatItDoesNotServe(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, r.Addr, "a", time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.e.Start(ctx)
	defer a.e.Stop()
	two := ringOf(t, "a", "b")
	var pts []proto.Point
	var enc proto.Encoder
	for i := 0; i < 64; i++ {
		pts = append(pts, gauge(string(rune('a'+i%26))+"host"+string(rune('0'+i/26)), "one.point", 60, 50))
		enc.Add(&pts[i])
	}
	body := enc.AppendTo(nil)
	submit := func() error {
		done := make(chan error, 1)
		a.e.Submit(body, func(err error) { done <- err })
		return <-done
	}
	// Gained just now: nothing is settled.
	a.tr.Apply(two, time.Now())
	err := submit()
	var je *proto.JudgeError
	if err == nil || !errors.As(proto.DecodeJudgeReply(proto.JudgeReplyError(err)), &je) {
		t.Fatalf("unsettled: got %v", err)
	}
	bm, moved, _ := je.Moved()
	if !moved {
		t.Fatalf("not a MOVED reply: %v", err)
	}
	for i := range pts {
		if !proto.MovedHas(bm, i) {
			t.Fatalf("point %d judged before its partition settled", i)
		}
	}
	// Settled (a fresh tracker with no settle period, same ring).
	a.tr = owner.New("a", 0)
	a.e.SetOwner(a.tr)
	a.tr.Apply(two, time.Now())
	err = submit()
	if err == nil {
		t.Fatal("every point accepted, yet b owns some")
	}
	je = nil
	if !errors.As(proto.DecodeJudgeReply(proto.JudgeReplyError(err)), &je) {
		t.Fatal(err)
	}
	bm, moved, _ = je.Moved()
	if !moved {
		t.Fatalf("not a MOVED reply: %v", err)
	}
	refused := 0
	for i := range pts {
		var buf []byte
		buf = proto.AppendSeriesKey(buf, pts[i].Endpoint, pts[i].Metric, pts[i].Tags)
		owner, _ := two.Locate(buf)
		if proto.MovedHas(bm, i) != (owner == "b") {
			t.Fatalf("point %d (owner %s): refused=%v", i, owner, proto.MovedHas(bm, i))
		}
		if owner == "b" {
			refused++
		}
		_, held := a.e.History(string(buf))
		if held != (owner == "a") {
			t.Fatalf("point %d (owner %s): judged=%v", i, owner, held)
		}
	}
	if refused == 0 || refused == len(pts) {
		t.Fatalf("test needs a mix: %d of %d refused", refused, len(pts))
	}
	if n := testutil.ToFloat64(a.m.PointsMoved); int(n) != len(pts)+refused {
		t.Fatalf("points moved %v, want %d", n, len(pts)+refused)
	}
}

// After regaining its partitions, the states of a request's series are
// read again in pipelined round trips (at most one per worker part), never
// one per series.
func TestRegainReloadsStatesBatched(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, r.Addr, "a", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.e.Start(ctx)
	defer a.e.Stop()
	const n = 200
	send := func(ts int64) {
		var enc proto.Encoder
		for i := 0; i < n; i++ {
			p := gauge("h"+strconv.Itoa(i), "one.point", ts, 50)
			enc.Add(&p)
		}
		done := make(chan error, 1)
		a.e.Submit(enc.AppendTo(nil), func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	moveTo(ringOf(t, "a"), a)
	send(60)
	loads, trips := testutil.ToFloat64(a.m.StateLoads), testutil.ToFloat64(a.m.BatchLoads)
	if loads != n || trips > 4 {
		t.Fatalf("first request: %v states in %v round trips, want %d in at most 4", loads, trips, n)
	}
	send(120) // owned throughout: nothing is read
	if l, tr := testutil.ToFloat64(a.m.StateLoads), testutil.ToFloat64(a.m.BatchLoads); l != loads || tr != trips {
		t.Fatalf("series owned throughout were read again: %v states, %v trips", l-loads, tr-trips)
	}
	moveTo(ringOf(t, "b"), a)
	moveTo(ringOf(t, "a"), a)
	send(180)
	l, tr := testutil.ToFloat64(a.m.StateLoads)-loads, testutil.ToFloat64(a.m.BatchLoads)-trips
	if l != n || tr > 4 || tr < 1 {
		t.Fatalf("after regaining: %v states in %v round trips, want %d in 1..4", l, tr, n)
	}
}

// Two transfers disagree about the owner of a series: each sends its
// points to the judge it believes owns it. Only the owner in the judges'
// shared view judges them; the other refuses them (MOVED) and the
// transfer sends them on. The alarm ends as in-order judging leaves it.
func TestTransfersDisagreeOnlyOwnerJudges(t *testing.T) {
	r := redistest.Start(t)
	a, b := newNode(t, r.Addr, "a", 0), newNode(t, r.Addr, "b", 0)
	both := ringOf(t, "a", "b")
	moveTo(both, a, b)
	// A series b owns.
	ep := ""
	for i := 0; ep == ""; i++ {
		e := "h" + strconv.Itoa(i)
		if o, _ := both.Locate([]byte(e + "/one.point")); o == "b" {
			ep = e
		}
	}
	vals := []float64{50, 1, 1, 50, 1, 50, 50, 1}
	nodes := []judgeNode{a, b}
	refusedByA := 0
	for i, v := range vals {
		p := gauge(ep, "one.point", int64(60*(i+1)), v)
		first := nodes[i%2] // alternate transfers with different views
		err := first.e.Process(context.Background(), []proto.Point{p})
		if err != nil {
			if first.tr != a.tr || !strings.Contains(err.Error(), "MOVED") {
				t.Fatalf("point %d: %v", i, err)
			}
			refusedByA++
			mustProcess(t, b.e, p) // the transfer routes it again
		}
	}
	if refusedByA != len(vals)/2 {
		t.Fatalf("a refused %d points, want %d", refusedByA, len(vals)/2)
	}
	if _, held := a.e.History(ep + "/one.point"); held {
		t.Fatal("a kept a window of a series it does not own")
	}
	got := statuses(t, a.fixture, 2)
	want := []string{"PROBLEM", "OK", "PROBLEM", "OK", "PROBLEM"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// Series of partitions moved away are dropped by the sweep; owned ones
// stay until idle.
func TestSweepDropsSeriesMovedAway(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, r.Addr, "a", 0)
	moveTo(ringOf(t, "a"), a)
	for i := 0; i < 40; i++ {
		mustProcess(t, a.e, gauge("h"+strconv.Itoa(i), "no.rules", 60, 1))
	}
	two := ringOf(t, "a", "b")
	moveTo(two, a)
	mine := 0
	for i := 0; i < 40; i++ {
		if o, _ := two.Locate([]byte("h" + strconv.Itoa(i) + "/no.rules")); o == "a" {
			mine++
		}
	}
	if n := a.e.Sweep(time.Now()); n != 0 {
		t.Fatalf("%d series evicted as idle", n)
	}
	if got := a.e.SeriesCount(); got != int64(mine) {
		t.Fatalf("%d series left, want the %d a owns", got, mine)
	}
	if n := testutil.ToFloat64(a.m.SeriesPruned); int(n) != 40-mine {
		t.Fatalf("pruned %v, want %d", n, 40-mine)
	}
}

// One unreadable stored state (a hand-edited status, a key of another
// type) does not fail requests: its series is judged as having no state,
// the next transition overwrites it, and other series keep flowing.
func TestUnreadableStateDoesNotStall(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, moveRules)
	ctx := context.Background()
	badID := proto.StrategyEventID(1, "bad/one.point")
	typeID := proto.StrategyEventID(1, "typ/one.point")
	f.rdb.HSet(ctx, "kestrel:alarm:"+badID, "status", "MAYBE", "currentStep", "x")
	f.rdb.Set(ctx, "kestrel:alarm:"+typeID, "a string", 0)
	for i, v := range []float64{50, 1, 50} {
		ts := int64(60 * (i + 1))
		mustProcess(t, f.e, gauge("bad", "one.point", ts, v), gauge("typ", "one.point", ts, v), gauge("good", "one.point", ts, v))
	}
	for _, ep := range []string{"bad", "typ", "good"} {
		id := proto.StrategyEventID(1, ep+"/one.point")
		if st := state(t, f, id); st["status"] != "OK" || st["eventTime"] != "180" {
			t.Errorf("%s: state %v, want OK@180", ep, st)
		}
	}
	if got := statuses(t, f, 2); len(got) != 6 {
		t.Fatalf("events %v, want PROBLEM and OK for each of 3 series", got)
	}
	if n := testutil.ToFloat64(f.m.Unreadable); n != 2 {
		t.Fatalf("unreadable states counted %v, want 2", n)
	}
}

// A Redis failure is logged (rate-limited) with what was being written,
// not only counted.
func TestRedisFailureLogged(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, moveRules)
	var buf bytes.Buffer
	f.e.log = slog.New(slog.NewTextHandler(&buf, nil))
	mustProcess(t, f.e, gauge("h1", "one.point", 60, 50))
	r.Stop()
	for ts := int64(120); ts <= 240; ts += 60 {
		if err := f.e.Process(context.Background(), []proto.Point{gauge("h1", "one.point", ts, 1)}); err == nil {
			t.Fatal("no error with redis down")
		}
	}
	out := buf.String()
	if n := strings.Count(out, "redis failed"); n != 1 {
		t.Fatalf("%d log lines for 3 failures within 10 s, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "op=\"write alarm transition\"") || !strings.Contains(out, "kestrel:alarm:"+proto.StrategyEventID(1, "h1/one.point")) {
		t.Fatalf("log does not say what was written:\n%s", out)
	}
	if n := testutil.ToFloat64(f.m.RedisErrors); n != 3 {
		t.Fatalf("redis errors %v, want 3", n)
	}
}

// The check made before every alarm write: the series' partition is still
// served, in the ownership period the series was prepared under.
func TestStillServesBeforeWrites(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, r.Addr, "a", 0)
	moveTo(ringOf(t, "a"), a)
	mustProcess(t, a.e, gauge("h1", "one.point", 60, 50))
	var se *series
	for _, sh := range a.e.shards {
		if x := sh.series["h1/one.point"]; x != nil {
			se = x
		}
	}
	if se == nil || !a.e.stillServes(se) {
		t.Fatal("owned series not served")
	}
	moveTo(ringOf(t, "b"), a)
	if a.e.stillServes(se) {
		t.Fatal("served after the partition was lost")
	}
	moveTo(ringOf(t, "a"), a)
	if a.e.stillServes(se) {
		t.Fatal("a series prepared in an earlier ownership period is served: it would write from stale state")
	}
}

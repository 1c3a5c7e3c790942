package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// submitWait submits pts as one request and returns the decoded reply.
func submitWait(t *testing.T, e *Engine, pts []proto.Point) (*proto.PointFailures, error) {
	t.Helper()
	done := make(chan error, 1)
	e.Submit(proto.EncodeBatch(pts), func(err error) { done <- err })
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no reply")
	}
	if err == nil {
		return nil, nil
	}
	var je *proto.JudgeError
	if !errors.As(proto.DecodeJudgeReply(proto.JudgeReplyError(err)), &je) {
		t.Fatalf("reply %v is not a judge error", err)
	}
	f, ok, derr := je.Points()
	if derr != nil {
		t.Fatalf("bad POINTS reply %q: %v", je.Msg, derr)
	}
	if !ok {
		return nil, err
	}
	return f, nil
}

// One point whose alarm write fails for ever (its priority's event list
// is a string: WRONGTYPE) fails alone: the other points of its request
// are judged and written, and the reply names only that point as failed.
func TestPoisonPointFailsAlone(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, moveRules)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.e.Start(ctx)
	defer f.e.Stop()
	// three.points has priority 3: its event list cannot be pushed to.
	if err := f.rdb.Set(ctx, "event:p3", "not a list", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var pts []proto.Point
	for i := range 40 {
		pts = append(pts, gauge("h"+string(rune('a'+i%26))+string(rune('0'+i/26)), "one.point", 60, 1))
	}
	// all(#3): the poison series' first point is judged elsewhere, its
	// second (7) evaluates nothing, its third (23) fires and cannot be
	// written.
	mustProcess(t, f.e, gauge("bad", "three.points", 0, 1))
	pts[7] = gauge("bad", "three.points", 60, 1)
	pts[23] = gauge("bad", "three.points", 120, 1)
	poison := 23
	pf, err := submitWait(t, f.e, pts)
	if err != nil || pf == nil {
		t.Fatalf("reply %v %v, want a POINTS reply", pf, err)
	}
	for i := range pts {
		want := i == poison
		if proto.BitHas(pf.Failed, i) != want || proto.BitHas(pf.Retry, i) || proto.BitHas(pf.Moved, i) {
			t.Errorf("point %d: failed %v retry %v moved %v", i, proto.BitHas(pf.Failed, i), proto.BitHas(pf.Retry, i), proto.BitHas(pf.Moved, i))
		}
	}
	if pf.Reason == "" {
		t.Error("no reason in the reply")
	}
	if n := len(events(t, f.rdb, 2)); n != 38 {
		t.Fatalf("%d PROBLEM events for the 38 good series, want 38", n)
	}
	if n := testutil.ToFloat64(f.m.FailedPermanent); n != 1 {
		t.Fatalf("permanent failures counted %v, want 1", n)
	}
	// The same request again: the good points are duplicates now, the
	// poison one fails again, and nothing else.
	pf, _ = submitWait(t, f.e, pts)
	if pf == nil || !proto.BitHas(pf.Failed, poison) || len(pf.Retry) != 0 {
		t.Fatalf("second attempt: %+v", pf)
	}
}

// Redis down is transient: every point of the request is reported for
// retry (none as failed, so none is ever dead-lettered for it), and once
// Redis is back the same request is judged.
func TestRedisDownReportsRetryNotFailed(t *testing.T) {
	r := redistest.Start(t)
	f := newEngine(t, r.Addr, moveRules)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.e.Start(ctx)
	defer f.e.Stop()
	var pts []proto.Point
	for i := range 20 {
		pts = append(pts, gauge("h"+string(rune('a'+i)), "one.point", 60, 1))
	}
	r.Stop()
	pf, err := submitWait(t, f.e, pts)
	if err != nil || pf == nil {
		t.Fatalf("reply %v %v, want a POINTS reply", pf, err)
	}
	for i := range pts {
		if !proto.BitHas(pf.Retry, i) || proto.BitHas(pf.Failed, i) {
			t.Fatalf("point %d: retry %v failed %v, want retry only", i, proto.BitHas(pf.Retry, i), proto.BitHas(pf.Failed, i))
		}
	}
	if n := testutil.ToFloat64(f.m.FailedPermanent); n != 0 {
		t.Fatalf("permanent failures %v with redis down, want 0", n)
	}
	r.Start()
	wait.Until(t, "the request judged once redis is back", 20*time.Second, func() error {
		pf, err := submitWait(t, f.e, pts)
		if pf != nil || err != nil {
			return fmt.Errorf("redis back, still %+v %v", pf, err)
		}
		return nil
	})
	if n := len(events(t, f.rdb, 2)); n != 20 {
		t.Fatalf("%d events after redis came back, want 20", n)
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want failure
	}{
		{errMovedAll, failMoved},
		{permanent(errors.New("x")), failPermanent},
		{context.DeadlineExceeded, failRetry},
		{errors.New("dial tcp: connection refused"), failRetry},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

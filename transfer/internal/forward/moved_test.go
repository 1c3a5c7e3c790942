package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/proto"
)

// A judge answers MOVED for some points (not its own yet, or not settled):
// the points it took count as forwarded, the refused ones are routed again
// and reach it once; the judge is neither backed off as failing nor taken
// out of the ring.
func TestMovedPointsRoutedAgain(t *testing.T) {
	h := newHarness(t, nil, nil)
	j := h.judge("judge-1")
	wait.For(t, "judge", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	refuse := func(p proto.Point) bool {
		return strings.HasSuffix(p.Endpoint, "1") || strings.HasSuffix(p.Endpoint, "3")
	}
	j.MoveNext(2, refuse)
	pts := series(0, 30, time.Now().Unix())
	want := 0
	for _, p := range pts {
		if refuse(p) {
			want++
		}
	}
	if want == 0 || want == len(pts) {
		t.Fatalf("test needs a mix, %d of %d refused", want, len(pts))
	}
	h.publish("src", proto.EncodeBatch(pts))
	wait.For(t, "acked after MOVED", 10*time.Second, func() bool { return val(h.met.MessagesAcked) == 1 && h.drained() })
	got := collect(t, nil, j)
	for k, n := range got {
		if n != 1 {
			t.Errorf("point %v judged %d times", k, n)
		}
	}
	checkAll(t, expected([][]proto.Point{pts}), j)
	if v := val(h.met.PointsForwarded); v != 30 {
		t.Errorf("forwarded %v, want 30", v)
	}
	if v, m := val(h.met.PointsMoved), j.Moved(); v != float64(m) || m < want {
		t.Errorf("points moved metric %v, judge refused %d (at least %d)", v, m, want)
	}
	if v := val(h.met.JudgeRetries.WithLabelValues(RetryMoved)); v < 1 {
		t.Errorf("moved retries %v", v)
	}
	for _, r := range []string{RetryErrorReply, RetryTimeout} {
		if v := val(h.met.JudgeRetries.WithLabelValues(r)); v != 0 {
			t.Errorf("%s retries %v: MOVED is not a failure", r, v)
		}
	}
	if !h.mem.Ring().Has("judge-1") || val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeSuspect)) != 0 {
		t.Fatal("a MOVED reply must not take the judge out")
	}
}

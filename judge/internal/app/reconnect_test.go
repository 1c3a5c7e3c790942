package app

import (
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A judge whose NATS connection drops owns nothing until it is connected
// again and its membership has warmed up; then it gains every partition
// anew (new ownership periods: windows dropped, states re-read).
func TestLostConnectionOwnsNothingUntilWarmedUp(t *testing.T) {
	ns := natstest.StartServer(t)
	rs := redistest.Start(t)
	cfg, _ := testConfig(t, ns.ClientURL(), rs.Addr, "judge-reconnect")
	cfg.Membership.Timeout = time.Second
	a, stop := start(t, cfg)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	all := cfg.Ring.PartitionCount
	owned := func() int { return a.cl.tracker.Table().Owned() }
	wait.For(t, "every partition owned", 20*time.Second, func() bool { return owned() == all })
	if lost := testutil.ToFloat64(a.cl.lost); lost != 0 {
		t.Fatalf("%v partitions lost before the connection dropped", lost)
	}

	// The server drops the judge's connection; the judge reconnects.
	id, err := a.nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	kicked := time.Now()
	if err := ns.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "every partition lost", 10*time.Second, func() bool {
		return owned() == 0 && testutil.ToFloat64(a.cl.lost) == float64(all)
	})
	wait.For(t, "every partition gained again", 20*time.Second, func() bool { return owned() == all })
	if d := time.Since(kicked); d < a.cl.mem.WarmUp() {
		t.Errorf("partitions owned again %v after the connection dropped, before the warm-up (%v)", d, a.cl.mem.WarmUp())
	}
	if gained := testutil.ToFloat64(a.cl.gained); gained != float64(2*all) {
		t.Errorf("%v partitions gained, want %d (all of them twice)", gained, 2*all)
	}
}

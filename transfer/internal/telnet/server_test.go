package telnet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet/telnettest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func start(t *testing.T, f *telnettest.Fixture) *telnet.Server {
	t.Helper()
	return telnettest.Start(t, f, telnet.Start)
}

// Lines sent on a connection kept open are stored as they arrive, with
// Open-Falcon's defaults; quit ends the session after storing the rest.
func TestUpdateLinesStored(t *testing.T) {
	f := telnettest.New(t, nil)
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	ts := time.Now().Unix() - 30
	c.Send(t, fmt.Sprintf("update host1 cpu.idle %d 97.5", ts),
		fmt.Sprintf("update\thost1  mem.free %d 1024 GAUGE 30\r", ts))
	pts := f.WaitStored(t, 2) // the connection is still open
	want := []proto.Point{
		{Endpoint: "host1", Metric: "cpu.idle", Value: 97.5, Timestamp: ts, Type: proto.Counter, Step: 60},
		{Endpoint: "host1", Metric: "mem.free", Value: 1024, Timestamp: ts, Type: proto.Gauge, Step: 30},
	}
	for i := range want {
		if got := fmt.Sprint(pts[i]); got != fmt.Sprint(want[i]) {
			t.Errorf("point %d: %s, want %s", i, got, fmt.Sprint(want[i]))
		}
	}
	before := time.Now().Unix()
	c.Send(t, "update host2 disk.io 0 5 DERIVE 3600:0:U:120", "", "quit", "update host3 never 0 1")
	if rest := c.Closed(t); rest != "" {
		t.Fatalf("replies to good lines: %q", rest)
	}
	pts = f.WaitStored(t, 3)
	p := pts[2]
	if p.Endpoint != "host2" || p.Type != proto.Derive || p.Step != 120 || p.Timestamp < before || p.Timestamp > time.Now().Unix() {
		t.Fatalf("RRD step and ts 0: %+v", p)
	}
	if v := testutil.ToFloat64(f.Met.Requests.WithLabelValues(ingest.ListenerTelnet)); v != 3 {
		t.Fatalf("requests %v, want 3", v)
	}
	if v := testutil.ToFloat64(f.Met.PointsAccepted.WithLabelValues(ingest.ListenerTelnet)); v != 3 {
		t.Fatalf("accepted %v, want 3", v)
	}
}

// Many lines written at once are published in few batches, and all of
// them are stored, once each (the stream's order is the batches', which
// the Publisher's workers may store in any order).
func TestManyLinesBatched(t *testing.T) {
	f := telnettest.New(t, nil)
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	ts := time.Now().Unix()
	var lines []string
	for i := range 5000 {
		lines = append(lines, fmt.Sprintf("update host%d m %d %d GAUGE", i%50, ts, i))
	}
	c.Send(t, lines...)
	pts := f.WaitStored(t, 5000)
	seen := make([]bool, 5000)
	for _, p := range pts {
		if seen[int(p.Value)] {
			t.Fatalf("value %v stored twice", p.Value)
		}
		seen[int(p.Value)] = true
	}
	if b := testutil.ToFloat64(f.Met.Batches[0]); b > 1000 {
		t.Fatalf("%v batches for 5000 lines", b)
	}
}

// Every bad line gets one error line, is counted by reason, and the
// session goes on.
func TestBadLines(t *testing.T) {
	f := telnettest.New(t, nil)
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	now := time.Now().Unix()
	f.CheckBadLines(t, c, ingest.ListenerTelnet, []telnettest.BadLine{
		{Line: "hello there", Reply: `error: unknown command: "hello"`, Reason: proto.OK},
		{Line: "update host1 m 1", Reply: "error: update takes <endpoint> <metric> <timestamp> <value> [<counterType>] [<step>]", Reason: proto.ReasonBadJSON},
		{Line: "update h m 1 2 GAUGE 60 extra", Reply: "error: update takes", Reason: proto.ReasonBadJSON},
		{Line: "update h m yesterday 1", Reply: `error: invalid timestamp: "yesterday"`, Reason: proto.ReasonBadJSON},
		{Line: "update h m 0 abc", Reply: `error: value is not a number or numeric string: "abc" (metric "m")`, Reason: proto.ReasonBadValue},
		{Line: "update h m 0 NaN", Reply: `error: value is NaN or infinite (metric "m")`, Reason: proto.ReasonNotFinite},
		{Line: "update h m 0 1e999", Reply: `error: value is NaN or infinite: "1e999"`, Reason: proto.ReasonNotFinite},
		{Line: "update h m 0 1 gauge", Reply: `error: counterType must be GAUGE, COUNTER or DERIVE: "gauge"`, Reason: proto.ReasonCounterType},
		{Line: "update h m 0 1 GAUGE 0", Reply: "error: step must be > 0", Reason: proto.ReasonBadStep},
		{Line: "update h m 0 1 GAUGE x", Reply: `error: step must be > 0: "x"`, Reason: proto.ReasonBadStep},
		{Line: "update h m 0 1 GAUGE 1:2:3", Reply: `error: step must be > 0: "1:2:3"`, Reason: proto.ReasonBadStep},
		{Line: "update h kernel.hostname 0 1", Reply: "error: metric kernel.hostname is not accepted", Reason: proto.ReasonHostname},
		{Line: fmt.Sprintf("update h m %d 1", now+3600), Reply: "error: timestamp is more than 10 minutes in the future", Reason: proto.ReasonFuture},
		{Line: "update " + strings.Repeat("e", 300) + " m 0 1", Reply: "error: endpoint exceeds 255 bytes", Reason: proto.ReasonEndpointLong},
		// Open-Falcon's order: the counter type is checked before the value.
		{Line: "update h m 0 abc gauge", Reply: "error: counterType must be", Reason: proto.ReasonCounterType},
	})
	c.Send(t, "update h good 0 1")
	f.WaitStored(t, 1)
}

// A line over max_line_bytes, binary data, and a line never finished
// are answered, counted and their connection closed; the lines before
// them are stored and another client is not disturbed.
func TestBadConnections(t *testing.T) {
	f := telnettest.New(t, nil)
	f.Cfg.ReadTimeout = 300 * time.Millisecond
	s := start(t, f)
	other := telnettest.Dial(t, s.Addr())
	l := ingest.ListenerTelnet
	for i, tc := range []telnettest.BadConn{
		{Name: "too long", Send: "update h before 0 1\n" + strings.Repeat("x", 5000) + "\n", Reply: "error: line longer than 1024 bytes, closing\n", Reason: ingest.RefusedTooLarge},
		{Name: "too long without newline", Send: "update h before 0 1\n" + strings.Repeat("x", 5000), Reply: "error: line longer than 1024 bytes, closing\n", Reason: ingest.RefusedTooLarge},
		{Name: "binary", Send: "update h before 0 1\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", Reply: "error: binary data, closing\n", Reason: ingest.RefusedMalformed},
		{Name: "no newline", Send: "update h before 0 1\nupdate h m 0", Reply: "error: timeout, closing\n", Reason: ingest.RefusedTimeout},
	} {
		f.CheckBadConn(t, s.Addr(), l, tc)
		f.WaitStored(t, 2*i+1) // the line before
		other.Send(t, "update other m 0 1")
		f.WaitStored(t, 2*i+2)
	}
	wait.For(t, "one connection left", 5*time.Second, func() bool {
		return testutil.ToFloat64(f.Met.Connections.WithLabelValues(l)) == 1
	})
}

// When the stream cannot store (deleted, then NATS down), the client is
// told its points were not stored, and nothing is counted stored.
func TestUnstoredIsAnswered(t *testing.T) {
	f := telnettest.New(t, func(c *ingest.Config) { c.PublishTimeout = 300 * time.Millisecond })
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	f.DeleteStream(t)
	c.Send(t, "update h m 0 1")
	if got := c.Line(t); !strings.HasPrefix(got, "error: retry: 1 points not stored: the ingest stream cannot store points now") {
		t.Fatalf("reply %q", got)
	}
	f.Srv.Shutdown()
	c.Send(t, "update h m 0 3")
	if got := c.Line(t); !strings.HasPrefix(got, "error: retry: 1 points not stored") {
		t.Fatalf("reply with NATS down %q", got)
	}
	if v := testutil.ToFloat64(f.Met.PointsStored); v != 0 {
		t.Fatalf("%v points counted stored", v)
	}
	if v := f.Refused(ingest.ListenerTelnet, ingest.RefusedUnavailable); v < 2 {
		t.Fatalf("unavailable refusals %v", v)
	}
}

// Close answers the lines being published (here: a publish waiting for a
// NATS server that is gone), then closes the connections.
func TestGracefulClose(t *testing.T) {
	f := telnettest.New(t, func(c *ingest.Config) { c.PublishTimeout = time.Second })
	s := start(t, f)
	idle := telnettest.Dial(t, s.Addr())
	busy := telnettest.Dial(t, s.Addr())
	f.Srv.Shutdown()
	busy.Send(t, "update h m 0 1")
	wait.For(t, "the line read", 5*time.Second, func() bool {
		return testutil.ToFloat64(f.Met.PointsAccepted.WithLabelValues(ingest.ListenerTelnet)) == 1
	})
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	if got := busy.Closed(t); !strings.HasPrefix(got, "error: retry: 1 points not stored") {
		t.Fatalf("in-flight line answered %q", got)
	}
	if got := idle.Closed(t); got != "" {
		t.Fatalf("idle connection told %q", got)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if v := f.Refused(ingest.ListenerTelnet, ingest.RefusedTimeout); v != 0 {
		t.Fatalf("the stop counted %v timeouts", v)
	}
}

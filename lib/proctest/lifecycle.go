package proctest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natsconn/natsconntest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

// The checks every service binary passes (agent, transfer, judge): start
// gets the YAML of the nats block to put in the binary's config (with
// JSON logs) and starts it.

// Logged waits until p logged a line whose msg starts with prefix and
// returns when it was logged; it fails at once when p exits first.
func Logged(t testing.TB, p *Proc, prefix string) time.Time {
	t.Helper()
	wait.For(t, prefix+" logged", 20*time.Second, func() bool {
		select {
		case <-p.Exited():
			t.Fatalf("exited before logging %q", prefix)
		default:
		}
		return len(p.LogLines(prefix)) > 0
	})
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(p.LogLines(prefix)[0]["time"]))
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// CheckNATSDown: with NATS unreachable the binary logs "cannot reach NATS
// at <url>" within a second of "starting", keeps trying, and exits 0
// within 2 s of SIGTERM.
func CheckNATSDown(t *testing.T, start func(natsYAML string) *Proc) {
	t.Helper()
	url, _ := natsconntest.Unreachable(t)
	p := start(`nats: {urls: ["` + url + `"]}` + "\n")
	said := Logged(t, p, "cannot reach NATS at "+url)
	if d := said.Sub(Logged(t, p, "starting")); d > time.Second {
		t.Errorf("cannot reach NATS logged %v after starting", d)
	}
	p.Stop(t, 2*time.Second)
}

// CheckSIGTERMWhileConnecting: SIGTERM while the binary is still
// connecting to a server that accepted the connection and never answers
// (connect_timeout a minute) exits 0 within 2 s, logged as a stop before
// starting.
func CheckSIGTERMWhileConnecting(t *testing.T, start func(natsYAML string) *Proc) {
	t.Helper()
	silent := natsconntest.StartSilent(t, 0)
	p := start(`nats: {urls: ["` + silent.URL() + `"], connect_timeout: 1m}` + "\n")
	wait.For(t, "connection to NATS", 10*time.Second, func() bool { return silent.Accepted() > 0 })
	p.Stop(t, 2*time.Second)
	if len(p.LogLines("stopped before starting")) != 1 {
		t.Error("the stop while connecting is not logged")
	}
}

// CheckCleanStop stops p (running and connected) with SIGTERM and checks
// a clean stop: exit 0 within d, nothing logged above INFO, the shutdown
// steps logged in this order, the NATS disconnect logged once.
func CheckCleanStop(t *testing.T, p *Proc, d time.Duration, steps ...string) {
	t.Helper()
	p.Stop(t, d)
	for _, l := range p.LogLines("") {
		if l["level"] != "INFO" {
			t.Errorf("not INFO: %v", l)
		}
	}
	var got []string
	for _, l := range p.LogLines("shutdown step done") {
		got = append(got, fmt.Sprint(l["step"]))
	}
	if g, w := strings.Join(got, ", "), strings.Join(steps, ", "); g != w {
		t.Errorf("shutdown steps %s, want %s", g, w)
	}
	if n := len(p.LogLines("nats disconnected")); n != 1 {
		t.Errorf("nats disconnected logged %d times, want once", n)
	}
}

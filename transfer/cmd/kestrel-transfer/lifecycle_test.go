package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/proctest"
)

// transfer starts the binary with yaml (http on a free port, JSON logs).
func transfer(t *testing.T, yaml string) *proctest.Proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "transfer.yaml")
	if err := os.WriteFile(path, []byte(yaml+"http: {listen: \"127.0.0.1:0\"}\nlog: {format: json}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return proctest.Start(t, buildBinary(t), "-c", path)
}

// Flags and config errors exit 2 naming the file, line and field; a
// malformed NATS URL is one of them (it used to be retried for ever).
func TestFlagsAndConfigErrors(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-version"}, 0, "kestrel-transfer test-1"},
		{[]string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"extra"}, 2, `unexpected arguments ["extra"]`},
		{[]string{"frob", "x"}, 2, `unexpected arguments ["frob" "x"]`},
		{[]string{"-c", "/nonexistent/transfer.yaml"}, 2, "/nonexistent/transfer.yaml"},
		{[]string{"-c", write("a.yaml", "nats:\n  urls: [\"htp:/bad url\"]\n")}, 2, `a.yaml: nats.urls[0]: "htp:/bad url" is not a NATS URL`},
		{[]string{"-c", write("b.yaml", "judge:\n  linger: 5ms\n  lingerr: 1s\n")}, 2, "b.yaml: line 3: judge.lingerr: field lingerr not found"},
		{[]string{"-c", write("c.yaml", "ring: {load: 0.5}\nmin_step: 0\n")}, 2, "c.yaml: ring.load: must be > 1.0"},
		{[]string{"-c", write("c.yaml", "ring: {load: 0.5}\nmin_step: 0\n")}, 2, "c.yaml: min_step: must be > 0"},
		{[]string{"-c", write("d.yaml", ""), "-log.level", "loud"}, 2, `log.level: must be debug, info, warn or error, got "loud"`},
	} {
		code, stdout, stderr := proctest.Run(t, bin, c.args...)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d with %q", c.args, code, stdout+stderr, c.code, c.want)
		}
	}
}

// NATS not there: the transfer says so within a second, keeps trying,
// and stops at once on SIGTERM.
func TestNATSDown(t *testing.T) {
	proctest.CheckNATSDown(t, func(nats string) *proctest.Proc { return transfer(t, nats) })
}

// SIGTERM while the transfer is still connecting exits at once.
func TestSIGTERMWhileConnecting(t *testing.T) {
	proctest.CheckSIGTERMWhileConnecting(t, func(nats string) *proctest.Proc { return transfer(t, nats) })
}

// A clean stop logs every shutdown step and nothing above INFO (it used to
// log WARN nats disconnected err=<nil>).
func TestCleanStop(t *testing.T) {
	srv := natstest.StartServer(t)
	p := transfer(t, "nats: {urls: [\""+srv.ClientURL()+"\"]}\nmembership: {timeout: 1s, rejoin_hold: 200ms}\n")
	proctest.Logged(t, p, "forwarding")
	proctest.CheckCleanStop(t, p, 15*time.Second, "stop forwarding", "stop membership and stream keeper", "stop http", "drain nats")
}

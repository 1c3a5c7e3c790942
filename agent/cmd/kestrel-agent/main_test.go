package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/natstest"
	"github.com/kestrel-mon/kestrel/lib/proctest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

// bin is the agent binary built for the process tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kestrel-agent-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, binary)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlagsAndConfig(t *testing.T) {
	f := func(args []string, wantCode int, wantOut, wantErr string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := runAgent(args, &out, &errb)
		if code != wantCode || !strings.Contains(out.String(), wantOut) || !strings.Contains(errb.String(), wantErr) {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want %d, %q, %q", args, code, out.String(), errb.String(), wantCode, wantOut, wantErr)
		}
	}
	f([]string{"-version"}, 0, "kestrel-agent dev\n", "")
	f([]string{"-nope"}, 2, "", "flag provided but not defined: -nope")
	f([]string{"extra"}, 2, "", `unexpected arguments ["extra"]`)
	f([]string{"-c", "/nonexistent/agent.yaml"}, 2, "", "/nonexistent/agent.yaml")
	f([]string{"-log.level", "loud"}, 2, "", `-log.level: log.level: must be debug, info, warn or error, got "loud"`)
	p := writeConfig(t, "nats:\n  urls: [\"htp:/bad url\"]\nstepp: 1\n")
	f([]string{"-c", p}, 2, "", p+": line 3: stepp: field stepp not found")
	p = writeConfig(t, "nats:\n  urls: [\"htp:/bad url\"]\nhostname: \"a\\tb\"\n")
	f([]string{"-c", p}, 2, "", p+`: nats.urls[0]: "htp:/bad url" is not a NATS URL`)
	f([]string{"-c", p}, 2, "", p+`: hostname: "a\tb" holds a control character`)
}

// agent starts the binary with yaml (http.listen on a free port added)
// and returns it once it logged "agent started" or stopped.
func agent(t *testing.T, yaml string) *proctest.Proc {
	t.Helper()
	p := proctest.Start(t, bin, "-c", writeConfig(t, yaml+"http: {listen: \"127.0.0.1:0\"}\nlog: {format: json}\n"))
	return p
}

// stopped sends SIGTERM and wants exit code 0 within d.
func stopped(t *testing.T, p *proctest.Proc, d time.Duration) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	exited, err := p.Wait(d)
	if !exited {
		t.Fatalf("still running %v after SIGTERM", d)
	}
	if err != nil {
		t.Fatalf("exit: %v", err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// lines returns the JSON log lines of p whose msg starts with prefix.
func lines(t *testing.T, p *proctest.Proc, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(p.Output.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue // a partly written line
		}
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// The first user's experience: NATS not there. The agent says so within a
// second and stops at once on SIGTERM.
func TestNATSDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close()
	p := agent(t, "step: 1\nnats: {urls: [\""+url+"\"]}\n")
	wait.For(t, "cannot reach NATS logged", 10*time.Second, func() bool { return len(lines(t, p, "cannot reach NATS at "+url)) > 0 })
	started, err := time.Parse(time.RFC3339Nano, lines(t, p, "starting")[0]["time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	said, _ := time.Parse(time.RFC3339Nano, lines(t, p, "cannot reach NATS at")[0]["time"].(string))
	if d := said.Sub(started); d > time.Second {
		t.Errorf("cannot reach NATS logged %v after starting", d)
	}
	wait.For(t, "agent started", 10*time.Second, func() bool { return len(lines(t, p, "agent started")) > 0 })
	stopped(t, p, 2*time.Second)
}

// SIGTERM while the agent is still connecting to a server that accepted
// the connection but never answers (connect_timeout is a minute).
func TestSIGTERMWhileConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	p := agent(t, "nats: {urls: [\"nats://"+ln.Addr().String()+"\"], connect_timeout: 1m}\n")
	wait.For(t, "connection to NATS", 10*time.Second, func() bool { return accepted.Load() > 0 })
	stopped(t, p, 2*time.Second)
}

// A clean stop logs no warning (it used to log WARN nats disconnected
// err=<nil>).
func TestCleanStop(t *testing.T) {
	srv := natstest.Start(t)
	p := agent(t, "nats: {urls: [\""+srv.URL()+"\"]}\n")
	wait.For(t, "connected", 10*time.Second, func() bool { return len(lines(t, p, "nats connected")) > 0 })
	stopped(t, p, 10*time.Second)
	for _, l := range lines(t, p, "") {
		if l["level"] != "INFO" {
			t.Errorf("not INFO: %v", l)
		}
	}
	for _, step := range []string{"stop http", "stop collection", "flush retry queue", "drain nats"} {
		found := false
		for _, l := range lines(t, p, "shutdown step done") {
			found = found || l["step"] == step
		}
		if !found {
			t.Errorf("shutdown step %q not logged", step)
		}
	}
	if len(lines(t, p, "nats disconnected")) != 1 {
		t.Error("the disconnect is not logged")
	}
}

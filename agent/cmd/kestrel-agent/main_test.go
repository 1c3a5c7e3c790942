package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/proctest"
)

// bin is the agent binary built for the process tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kestrel-agent-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "kestrel-agent")
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
		code := service().Main(args, &out, &errb)
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

// agent starts the binary with the config yaml, to which it adds an HTTP
// listener on a free port and JSON logs.
func agent(t *testing.T, yaml string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, bin, "-c", writeConfig(t, yaml+"http: {listen: \"127.0.0.1:0\"}\nlog: {format: json}\n"))
}

// The first user's experience: NATS not there. The agent says so within a
// second and stops at once on SIGTERM.
func TestNATSDown(t *testing.T) {
	proctest.CheckNATSDown(t, func(nats string) *proctest.Proc { return agent(t, "step: 1\n"+nats) })
}

// SIGTERM while the agent is still connecting exits at once.
func TestSIGTERMWhileConnecting(t *testing.T) {
	proctest.CheckSIGTERMWhileConnecting(t, func(nats string) *proctest.Proc { return agent(t, nats) })
}

// A clean stop logs no warning (it used to log WARN nats disconnected
// err=<nil>) and each shutdown step in order.
func TestCleanStop(t *testing.T) {
	srv := natstest.Start(t)
	p := agent(t, "nats: {urls: [\""+srv.URL()+"\"]}\n")
	proctest.Logged(t, p, "nats connected")
	proctest.CheckCleanStop(t, p, 10*time.Second, "stop http", "stop collection", "flush retry queue", "drain nats")
}

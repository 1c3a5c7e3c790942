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
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

// bin is the judge binary, built the way the Makefile does (version
// stamped with -ldflags -X) for the process tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kestrel-judge-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "kestrel-judge")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=test-1", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestBinary runs the real binary as an operator would.
func TestBinary(t *testing.T) {
	code, out, _ := proctest.Run(t, bin, "-version")
	if code != 0 || out != "kestrel-judge test-1\n" {
		t.Fatalf("-version: %q, exit %d; want %q and exit 0", out, code, "kestrel-judge test-1\n")
	}
	missing := filepath.Join(t.TempDir(), "no-such-judge.yaml")
	code, _, stderr := proctest.Run(t, bin, "-c", missing)
	if code != 2 {
		t.Fatalf("missing config: exit %d, want 2", code)
	}
	if !strings.Contains(stderr, missing) {
		t.Fatalf("missing config: stderr %q does not name %s", stderr, missing)
	}
}

// service().Main uses its own flag set, so it runs any number of times in one
// process (the global flag.CommandLine panics on the second definition).
func TestRunTwice(t *testing.T) {
	for i := range 2 {
		var stdout, stderr bytes.Buffer
		if code := service().Main([]string{"-version"}, &stdout, &stderr); code != 0 || stdout.String() != "kestrel-judge dev\n" {
			t.Fatalf("run %d -version: exit %d, stdout %q, stderr %q", i, code, stdout.String(), stderr.String())
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	var stdout, stderr bytes.Buffer
	if code := service().Main([]string{"-c", missing}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), missing) {
		t.Fatalf("missing config: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := service().Main([]string{"-no-such-flag"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "no-such-flag") {
		t.Fatalf("bad flag: exit %d, stderr %q", code, stderr.String())
	}
}

// Bad flags and configs exit 2 before anything starts, every problem
// named with the file and the field.
func TestFlagsAndConfig(t *testing.T) {
	f := func(args []string, wantErr string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := service().Main(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", args, code, errb.String(), wantErr)
		}
	}
	f([]string{"extra"}, `unexpected arguments ["extra"]`)
	p := judgeConfig(t, "")
	f([]string{"-c", p, "-log.level", "loud"}, `-log.level: log.level: must be debug, info, warn or error, got "loud"`)
	p = judgeConfig(t, "nats:\n  urls: [\"htp:/bad url\"]\nworkerz: 1\n")
	f([]string{"-c", p}, p+": line 6: workerz: field workerz not found")
	p = judgeConfig(t, "nats:\n  urls: [\"htp:/bad url\"]\nworkers: 0\n")
	f([]string{"-c", p}, p+`: nats.urls[0]: "htp:/bad url" is not a NATS URL`)
	f([]string{"-c", p}, p+`: workers: must be in 1..1024, got 0`)
}

// judgeConfig writes a judge.yaml with a rules file next to it, http on a
// free port, JSON logs and yaml appended, and returns its path.
func judgeConfig(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules.yaml"), "strategies: []\n")
	p := filepath.Join(dir, "judge.yaml")
	writeFile(t, p, "rules_file: rules.yaml\nhttp: {listen: \"127.0.0.1:0\"}\nlog: {format: json}\n"+yaml)
	return p
}

// judge starts the binary with judgeConfig(yaml).
func judge(t *testing.T, yaml string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, bin, "-c", judgeConfig(t, yaml))
}

// NATS not there: the judge says so within a second of starting, keeps
// trying, and stops at once on SIGTERM.
func TestNATSDown(t *testing.T) {
	proctest.CheckNATSDown(t, func(nats string) *proctest.Proc { return judge(t, nats) })
}

// SIGTERM while the judge is still connecting exits at once.
func TestSIGTERMWhileConnecting(t *testing.T) {
	proctest.CheckSIGTERMWhileConnecting(t, func(nats string) *proctest.Proc { return judge(t, nats) })
}

// A clean start and stop logs nothing above INFO (every shutdown used to
// log WARN nats disconnected err=<nil>, and the membership took the close
// for a lost connection), each shutdown step in order, and the disconnect
// once.
func TestCleanStop(t *testing.T) {
	ns := natstest.StartServer(t)
	rs := redistest.Start(t)
	p := judge(t, fmt.Sprintf("nats: {urls: [%q]}\nredis: {addr: %q}\n", ns.ClientURL(), rs.Addr))
	proctest.Logged(t, p, "judge started")
	proctest.CheckCleanStop(t, p, 20*time.Second, "leave", "drain requests", "finish in-flight", "stop http", "close redis", "close nats")
}

// The judge started from another directory finds rules_file next to its
// config ("relative to this file"), and a rules file that is not there is
// an error naming the config file.
func TestBinaryRulesFileRelativeToConfig(t *testing.T) {
	ns := natstest.StartServer(t)
	rs := redistest.Start(t)
	dir := t.TempDir()
	confDir := filepath.Join(dir, "conf")
	cwd := filepath.Join(dir, "cwd")
	for _, d := range []string{confDir, cwd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(confDir, "judge.yaml")
	writeFile(t, cfg, fmt.Sprintf("node_id: cmd-test\nnats:\n  urls: [%q]\nhttp:\n  listen: \"127.0.0.1:0\"\nredis:\n  addr: %q\nrules_file: rules.yaml\n", ns.ClientURL(), rs.Addr))

	// Not there yet: exit 2, the error names the config file and where
	// the rules file was looked for.
	cmd := exec.Command(bin, "-c", cfg)
	cmd.Dir = cwd
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("missing rules file: %v, want exit status 2 (stderr %q)", err, stderr.String())
	}
	for _, want := range []string{cfg + ": rules_file:", filepath.Join(confDir, "rules.yaml")} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("missing rules file: stderr %q lacks %q", stderr.String(), want)
		}
	}

	// Next to the config: loaded, though the working directory has none.
	writeFile(t, filepath.Join(confDir, "rules.yaml"), "strategies:\n  - {id: 1, allEndpoints: true, metric: m, func: \"all(#1)\", operator: \">\", rightValue: 1, maxStep: 1}\n")
	t.Chdir(cwd) // the child's working directory
	p := proctest.Start(t, bin, "-c", cfg)
	wait.For(t, "judge started", 30*time.Second, func() bool {
		select {
		case <-p.Exited():
			t.Fatalf("judge exited:\n%s", p.Output.String())
		default:
		}
		return strings.Contains(p.Output.String(), "judge started")
	})
	p.Stop(t, 20*time.Second)
	if !strings.Contains(p.Output.String(), "rules=1") {
		t.Fatalf("judge did not load the rule:\n%s", p.Output.String())
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

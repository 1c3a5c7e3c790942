package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
)

// TestBinary builds the real binary the way the Makefile does (version
// stamped with -ldflags -X) and runs it as an operator would.
func TestBinary(t *testing.T) {
	bin := build(t)

	out, err := exec.Command(bin, "-version").Output()
	if err != nil || string(out) != "kestrel-judge test-1\n" {
		t.Fatalf("-version: %q, %v; want %q and exit 0", out, err, "kestrel-judge test-1\n")
	}

	missing := filepath.Join(t.TempDir(), "no-such-judge.yaml")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-c", missing)
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("missing config: %v, want a non-zero exit", err)
	}
	if !strings.Contains(stderr.String(), missing) {
		t.Fatalf("missing config: stderr %q does not name %s", stderr.String(), missing)
	}
}

// run uses its own flag set, so it runs any number of times in one
// process (the global flag.CommandLine panics on the second definition).
func TestRunTwice(t *testing.T) {
	for i := range 2 {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"-version"}, &stdout, &stderr); code != 0 || stdout.String() != "kestrel-judge dev\n" {
			t.Fatalf("run %d -version: exit %d, stdout %q, stderr %q", i, code, stdout.String(), stderr.String())
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-c", missing}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), missing) {
		t.Fatalf("missing config: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"-no-such-flag"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "no-such-flag") {
		t.Fatalf("bad flag: exit %d, stderr %q", code, stderr.String())
	}
}

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), binary)
	build := exec.Command("go", "build", "-ldflags", "-X main.version=test-1", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

// The judge started from another directory finds rules_file next to its
// config ("relative to this file"), and a rules file that is not there is
// an error naming the config file.
func TestBinaryRulesFileRelativeToConfig(t *testing.T) {
	bin := build(t)
	ns := natstest.Start(t)
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
	stderr := &syncBuffer{}
	cmd := exec.Command(bin, "-c", cfg)
	cmd.Dir, cmd.Stderr = cwd, stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("missing rules file: %v, want exit status 2 (stderr %q)", err, stderr.String())
	}
	for _, want := range []string{cfg + ": rules_file:", filepath.Join(confDir, "rules.yaml")} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("missing rules file: stderr %q lacks %q", stderr.String(), want)
		}
	}

	// Next to the config: loaded, though the working directory has none.
	writeFile(t, filepath.Join(confDir, "rules.yaml"), "strategies:\n  - {id: 1, allEndpoints: true, metric: m, func: \"all(#1)\", operator: \">\", rightValue: 1, maxStep: 1}\n")
	stderr = &syncBuffer{}
	cmd = exec.Command(bin, "-c", cfg)
	cmd.Dir, cmd.Stderr = cwd, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(stderr.String(), "judge started") {
		select {
		case err := <-done:
			t.Fatalf("judge exited: %v\n%s", err, stderr.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("judge not started after 30s:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("judge stopped with %v:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "rules=1") {
		t.Fatalf("judge did not load the rule:\n%s", stderr.String())
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects a child's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds the real binary the way the Makefile does (version
// stamped with -ldflags -X) and runs it as an operator would.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), binary)
	build := exec.Command("go", "build", "-ldflags", "-X main.version=test-1", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}

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

package rollouttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryFlags: -version, a bad config (exit 2, file and field named),
// and a second updater on a locked install dir (exit 1).
func TestBinaryFlags(t *testing.T) {
	out, err := exec.Command(bins.opsUpdate, "-version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ops-updater dev" {
		t.Fatalf("-version: %q %v", out, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("keep: 1\n"), 0o644)
	cmd := exec.Command(bins.opsUpdate, "-c", bad)
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), bad) || !strings.Contains(string(out), "keep") {
		t.Fatalf("bad config: exit %d %q", cmd.ProcessState.ExitCode(), out)
	}

	m := &meta{url: "http://127.0.0.1:1"}
	root := filepath.Join(t.TempDir(), "agents")
	p := startUpdaterProc(t, m, updOpts{Hostname: "lock-1", NoKey: true, Interval: "1h"}, root)
	p.statusURL(t) // up and holding the lock
	cfg := filepath.Join(t.TempDir(), "u.yaml")
	os.WriteFile(cfg, []byte(updaterConfig(t, m, updOpts{Hostname: "lock-2", NoKey: true}, root)), 0o644)
	cmd = exec.Command(bins.opsUpdate, "-c", cfg)
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "locked by another ops-updater") {
		t.Fatalf("second updater: exit %d %q", cmd.ProcessState.ExitCode(), out)
	}
}

//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/proctest"
)

// TestUpdaterBinaryFlags: -version, a bad config (exit 2, file and field named),
// and a second updater on a locked install dir (exit 1).
func TestUpdaterBinaryFlags(t *testing.T) {
	code, stdout, stderr := proctest.Run(t, opsUpdaterBin(), "-version")
	if code != 0 || !strings.HasPrefix(stdout, "ops-updater ") || (os.Getenv("KESTREL_BIN") == "" && strings.TrimSpace(stdout) != "ops-updater dev") {
		t.Fatalf("-version: exit %d %q %q", code, stdout, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("keep: 1\n"), 0o644)
	code, stdout, stderr = proctest.Run(t, opsUpdaterBin(), "-c", bad)
	if out := stdout + stderr; code != 2 || !strings.Contains(out, bad) || !strings.Contains(out, "keep") {
		t.Fatalf("bad config: exit %d %q", code, out)
	}

	m := &meta{url: "http://127.0.0.1:1"}
	root := filepath.Join(t.TempDir(), "agents")
	p := startUpdater(t, m, updOpts{Hostname: "lock-1", NoKey: true, Interval: "1h"}, root)
	p.statusURL(t) // up and holding the lock
	cfg := filepath.Join(t.TempDir(), "u.yaml")
	os.WriteFile(cfg, []byte(updaterConfig(t, m, updOpts{Hostname: "lock-2", NoKey: true}, root)), 0o644)
	code, stdout, stderr = proctest.Run(t, opsUpdaterBin(), "-c", cfg)
	if out := stdout + stderr; code != 1 || !strings.Contains(out, "locked by another ops-updater") {
		t.Fatalf("second updater: exit %d %q", code, out)
	}
}

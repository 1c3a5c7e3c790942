package app

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/config"
)

const agents = `agents:
  - default: {name: kestrel-agent, version: %s, tarball: "http://t/a", cmd: start}
`

func writeConfig(t *testing.T, path, version string) {
	t.Helper()
	body := "http: {listen: '127.0.0.1:0'}\n" + strings.Replace(agents, "%s", version, 1)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Run serves until ctx ends and stops in order; Reload keeps the old
// config when the file is bad.
func TestRunReloadAndShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ops-meta.yaml")
	writeConfig(t, path, "1.0.0")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	a, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	resp, err := http.Get("http://" + a.HTTPAddr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	version := func() string { return a.Server().Config().Desired.Agent("kestrel-agent").Default.Version }
	writeConfig(t, path, "1.1.0")
	if err := a.Reload(ctx); err != nil || version() != "1.1.0" {
		t.Fatalf("reload: %v, version %s", err, version())
	}
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(ctx); err == nil || !strings.Contains(err.Error(), "bogus") || version() != "1.1.0" {
		t.Fatalf("bad reload: %v, version %s", err, version())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	out := logs.String()
	last := -1
	for _, step := range []string{`step="stop http"`, `step="stop rollout evaluation"`, `step="close store"`} {
		i := strings.Index(out, `msg="shutdown step done" `+step)
		if i < 0 || i < last {
			t.Fatalf("%s missing or out of order in:\n%s", step, out)
		}
		last = i
	}
}

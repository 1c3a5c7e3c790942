package app

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/config"
)

func testConfig(t *testing.T, root string) config.Config {
	t.Helper()
	yaml := "hostname: app-test\nmeta_urls: ['http://127.0.0.1:1']\ninterval: 1h\nhttp: {listen: '127.0.0.1:0'}\ninstall_dir: " + root + "\n"
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "u.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// New holds the install dir's lock until Run's shutdown releases it; Run
// stops on ctx and logs each shutdown step in order.
func TestRunStopsInOrderAndReleasesTheLock(t *testing.T) {
	root := filepath.Join(t.TempDir(), "agents")
	cfg := testConfig(t, root)
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := New(cfg, log, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, log, "test"); err == nil || !strings.Contains(err.Error(), "locked by another ops-updater") {
		t.Fatalf("second New on a locked dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	resp, err := http.Get("http://" + a.HTTPAddr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/health: %s", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	steps := regexp.MustCompile(`msg="shutdown step done" step="?([a-z ]+?)"? took=`).FindAllStringSubmatch(logs.String(), -1)
	var got []string
	for _, s := range steps {
		got = append(got, s[1])
	}
	if want := "stop updater,stop http,release install dir"; strings.Join(got, ",") != want {
		t.Fatalf("shutdown steps %q, want %s; log:\n%s", got, want, logs.String())
	}
	b, err := New(cfg, log, "test") // the lock was released
	if err != nil {
		t.Fatalf("New after Run: %v", err)
	}
	b.release()
	b.ln.Close()
}

// A port already taken fails New, and New releases the lock it took.
func TestNewListenFailureReleasesTheLock(t *testing.T) {
	root := filepath.Join(t.TempDir(), "agents")
	cfg := testConfig(t, root)
	log := slog.New(slog.DiscardHandler)
	a, err := New(cfg, log, "test")
	if err != nil {
		t.Fatal(err)
	}
	addr := a.HTTPAddr()
	a.release()
	other := cfg
	other.InstallDir = filepath.Join(t.TempDir(), "other")
	other.HTTP.Listen = addr // still held by a's listener
	if _, err := New(other, log, "test"); err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("New on a taken port: %v", err)
	}
	a.ln.Close()
	other.HTTP.Listen = "127.0.0.1:0"
	c, err := New(other, log, "test")
	if err != nil {
		t.Fatalf("the failed New kept the lock: %v", err)
	}
	c.release()
	c.ln.Close()
}

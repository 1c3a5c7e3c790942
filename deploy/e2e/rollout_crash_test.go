//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

// monitor samples a host until stopped and records any moment where two
// versions run at once or a version other than old/new runs.
func monitor(t *testing.T, root string, allowed ...string) (stop func()) {
	var wg sync.WaitGroup
	quit := make(chan struct{})
	var bad atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			_, running := onDisk(root)
			if len(running) > 1 {
				bad.Store(fmt.Sprintf("two versions running: %v", running))
			}
			for _, r := range running {
				ok := false
				for _, a := range allowed {
					ok = ok || r == a
				}
				if !ok {
					bad.Store(fmt.Sprintf("unexpected version running: %s", r))
				}
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
		if v := bad.Load(); v != nil {
			t.Fatalf("host not whole: %s", v)
		}
	}
}

// TestUpdaterCrashSafety kills ops-updater (SIGKILL) in the middle of a download
// and in the middle of a switch (a control start that blocks); the next
// run cleans up and finishes, and the host is whole on the old or the new
// version at every moment.
func TestUpdaterCrashSafety(t *testing.T) {
	hurl := healthServer(t)
	m := startMeta(t, metaOpts{Version: "1.0.0", HealthURL: hurl})
	m.publish("1.0.0", agentPkg("1.0.0", false))
	m.publish("1.1.0", agentPkg("1.1.0", false))
	root := filepath.Join(t.TempDir(), "agents")
	o := updOpts{Hostname: "crash-1", RequireSignature: true}
	p := startUpdater(t, m, o, root)
	wait.Until(t, "1.0.0 installed", 60*time.Second, state(func() (bool, string) { return whole(root, "1.0.0") }))
	stopMon := monitor(t, root, "1.0.0", "1.1.0", "1.2.0")

	// 1. Killed during a slow download.
	var slow atomic.Bool
	slow.Store(true)
	started := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(m.artifacts, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if !slow.Load() || !strings.HasSuffix(r.URL.Path, ".tar.gz") {
			w.Write(b)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b[:len(b)/3])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	m.reload(metaOpts{Version: "1.1.0", HealthURL: hurl, TarballBase: srv.URL})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("download never started")
	}
	wait.Until(t, "partial download on disk", 10*time.Second, state(func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(root, agentName, ".tmp-download-*"))
		return len(m) == 1, fmt.Sprint(m)
	}))
	p.kill()
	if ok, s := whole(root, "1.0.0"); !ok {
		t.Fatalf("after kill during download: %s", s)
	}
	slow.Store(false)
	p = startUpdater(t, m, o, root)
	wait.Until(t, "1.1.0 installed after restart", 60*time.Second, state(func() (bool, string) { return whole(root, "1.1.0") }))
	if !strings.Contains(p.log(), "removed leftovers of an interrupted install") {
		t.Fatal("leftover download not cleaned at startup")
	}

	// 2. Killed while the new version's control start hangs (old already stopped).
	block := filepath.Join(t.TempDir(), "block")
	blockPid := filepath.Join(t.TempDir(), "blockpid")
	os.WriteFile(block, nil, 0o644)
	wrapper := fmt.Sprintf(`#!/bin/sh
cd "$(dirname "$0")" || exit 1
if [ "$1" = start ] && [ -f %q ]; then
	echo $$ > %q
	while [ -f %q ]; do sleep 0.1; done
fi
exec ./control.real "$@"
`, block, blockPid, block)
	m.publish("1.2.0", fakeagent.Package(fakeagent.Options{Version: "1.2.0", Control: wrapper,
		Extra: []fakeagent.Entry{{Name: "control.real", Mode: 0o755, Body: fakeagent.RepoControl()}}}))
	m.reload(metaOpts{Version: "1.2.0", HealthURL: hurl})
	var wpid int
	wait.Until(t, "control start of 1.2.0 hanging", 60*time.Second, state(func() (bool, string) {
		b, err := os.ReadFile(blockPid)
		if err != nil {
			return false, err.Error()
		}
		wpid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return wpid > 0, ""
	}))
	// Heartbeats go on during the install and report it as pending.
	wait.Until(t, "pending 1.2.0 reported", 30*time.Second, state(func() (bool, string) {
		a, _ := m.host("crash-1")
		return a.Pending == "1.2.0", fmt.Sprintf("%+v", a)
	}))
	p.kill()
	syscall.Kill(wpid, syscall.SIGKILL) // the host went down with it
	if _, err := os.Stat(filepath.Join(root, agentName, ".pending")); err != nil {
		t.Fatalf("no pending marker mid-switch: %v", err)
	}
	if a, running := onDisk(root); a != "1.1.0" || len(running) != 0 {
		t.Fatalf("mid-switch state: active %q running %v", a, running)
	}
	os.Remove(block)
	p = startUpdater(t, m, o, root)
	wait.Until(t, "1.2.0 installed after recovery", 60*time.Second, state(func() (bool, string) { return whole(root, "1.2.0") }))
	log := p.log()
	for _, want := range []string{"recovering: the switch had not committed", "recovering: starting active version"} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q", want)
		}
	}
	stopMon()
	wait.Until(t, "ops-meta sees 1.2.0 with no error", 30*time.Second, state(func() (bool, string) {
		a, _ := m.host("crash-1")
		return a.Version == "1.2.0" && a.Status == "started" && a.Error == "", fmt.Sprintf("%+v", a)
	}))
}

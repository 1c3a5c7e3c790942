package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go/jetstream"
)

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kestrel-transfer")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=test-1", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBinary runs the real binary the way an operator does.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "kestrel-transfer test-1" {
		t.Fatalf("-version: %q %v", out, err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("ring: {load: 1.0}\n"), 0o600)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-c", bad)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "ring.load") {
		t.Fatalf("bad config: err %v, stderr %q", err, stderr.String())
	}

	srv := natstest.StartServer(t)
	httpAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "transfer.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
nats: {urls: [%q]}
http: {listen: %q}
membership: {timeout: 1s, rejoin_hold: 200ms}
consumer: {fetch_wait: 200ms}
shutdown_timeout: 2s
`, srv.ClientURL(), httpAddr)), 0o600)
	var logs bytes.Buffer
	cmd = exec.Command(bin, "-c", cfgPath, "-log.level", "debug")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{}) // closed once the process exited and its log is complete
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			return
		}
		if t.Failed() {
			t.Logf("transfer log:\n%s", logs.String())
		}
	})
	base := "http://" + httpAddr
	waitFor(t, "health 503 without judges", func() bool {
		code, body := get(base + "/health")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no judge")
	})
	subj, _ := proto.NewSubjects("kestrel")
	j := natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	waitFor(t, "health 200 with a judge", func() bool { code, _ := get(base + "/health"); return code == http.StatusOK })

	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The stream is created after membership starts: /health may say 200
	// a moment before it exists.
	var info jetstream.Stream
	waitFor(t, "stream KESTREL_INGEST", func() bool {
		info, err = js.Stream(ctx, "KESTREL_INGEST")
		return err == nil
	})
	sc := info.CachedInfo().Config
	if sc.Retention != jetstream.InterestPolicy || sc.Storage != jetstream.FileStorage || sc.Discard != jetstream.DiscardNew || sc.MaxBytes != 1<<30 || sc.Duplicates != 2*time.Minute {
		t.Fatalf("stream config %+v", sc)
	}
	now := time.Now().Unix()
	pts := []proto.Point{{Endpoint: "host01", Metric: "cpu.idle", Value: 3, Timestamp: now, Type: proto.Gauge, Step: 60}}
	if _, err := js.Publish(ctx, subj.Ingest("host01"), proto.EncodeBatch(pts), jetstream.WithMsgID("m1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "point at the judge", func() bool { return len(j.Points()) == 1 })
	waitFor(t, "metrics", func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "process_cpu_seconds_total") && strings.Contains(body, "kestrel_transfer_ring_members 1") &&
			strings.Contains(body, "kestrel_transfer_messages_acked_total 1") && strings.Contains(body, `kestrel_transfer_points_rejected_total{reason="bad_step"} 0`)
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("exit: %v", exitErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop after SIGTERM")
	}
	for _, step := range []string{"forwarding stopped", "membership stopped", "http stopped", "nats drained"} {
		if !strings.Contains(logs.String(), step) {
			t.Errorf("shutdown log lacks %q", step)
		}
	}
}

// runRing runs `kestrel-transfer ring args...` and returns its exit code,
// stdout and stderr.
func runRing(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"ring"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ring %v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// TestRingCommands: `ring get` and `ring set` on the real binary, and a
// running transfer that stops routing while its ring parameters differ
// from the bucket's and resumes when `ring set` makes them equal.
func TestRingCommands(t *testing.T) {
	bin := buildBinary(t)
	srv := natstest.StartServer(t)
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "transfer.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
nats: {urls: [%q]}
http: {listen: %q}
membership: {timeout: 1s, rejoin_hold: 200ms}
consumer: {fetch_wait: 200ms}
shutdown_timeout: 2s
`, srv.ClientURL(), httpAddr)), 0o600)

	code, _, stderr := runRing(t, bin, "get", "-c", cfgPath)
	if code != 1 || !strings.Contains(stderr, "no ring parameters stored") {
		t.Fatalf("get with nothing stored: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runRing(t, bin, "frob"); code != 2 || !strings.Contains(stderr, "usage") {
		t.Fatalf("unknown command: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runRing(t, bin, "get", "-c", cfgPath, "-load", "2"); code != 2 || !strings.Contains(stderr, "flag of ring set") {
		t.Fatalf("set flag on get: code %d, stderr %q", code, stderr)
	}
	// Nothing stored: set starts from the config's parameters.
	code, stdout, stderr := runRing(t, bin, "set", "-c", cfgPath, "-partition-count", "512")
	if code != 0 || !strings.Contains(stdout, "old:\nnone") || !strings.Contains(stdout, `"partition_count": 512`) ||
		!strings.Contains(stdout, `"rejoin_hold": "200ms"`) || !strings.Contains(stderr, "every transfer's and judge's config") {
		t.Fatalf("first set: code %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	code, stdout, _ = runRing(t, bin, "get", "-c", cfgPath)
	want := `{
  "partition_count": 512,
  "replication_factor": 20,
  "load": 1.25,
  "hasher": "xxhash64",
  "member_timeout": "1s",
  "rejoin_hold": "200ms"
}
`
	if code != 0 || stdout != want {
		t.Fatalf("get: code %d\n%s\nwant\n%s", code, stdout, want)
	}
	// Invalid values are refused and change nothing.
	if code, _, stderr := runRing(t, bin, "set", "-c", cfgPath, "-load", "0.5"); code != 2 || !strings.Contains(stderr, "load must be > 1.0") {
		t.Fatalf("invalid set: code %d, stderr %q", code, stderr)
	}
	// Unset flags keep the stored values.
	code, stdout, _ = runRing(t, bin, "set", "-c", cfgPath, "-rejoin-hold", "5s")
	if code != 0 || !strings.Contains(stdout, `"rejoin_hold": "200ms"`) || !strings.Contains(stdout, `"rejoin_hold": "5s"`) ||
		strings.Count(stdout, `"partition_count": 512`) != 2 {
		t.Fatalf("second set: code %d\n%s", code, stdout)
	}

	// A transfer started with partition_count 271 and rejoin_hold 200ms
	// does not route.
	var logs lockedBuffer
	cmd := exec.Command(bin, "-c", cfgPath)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("transfer log:\n%s", logs.String())
		}
	})
	subj, _ := proto.NewSubjects("kestrel")
	natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	base := "http://" + httpAddr
	wantBody := `{"ring":"config differs from KESTREL_RING: partition_count 271 (config) != 512 (bucket), rejoin_hold 200ms (config) != 5s (bucket)"}`
	waitFor(t, "health 503 naming the differences", func() bool {
		code, body := get(base + "/health")
		return code == http.StatusServiceUnavailable && strings.TrimSpace(body) == wantBody
	})
	waitFor(t, "mismatch metrics", func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "kestrel_transfer_ring_config_mismatch 1") && strings.Contains(body, "kestrel_transfer_fetch_paused 1")
	})
	// The operator stores this transfer's values: it routes again.
	code, stdout, stderr = runRing(t, bin, "set", "-c", cfgPath, "-partition-count", "271", "-rejoin-hold", "200ms")
	if code != 0 {
		t.Fatalf("set back: code %d\n%s\n%s", code, stdout, stderr)
	}
	waitFor(t, "health 200", func() bool { code, _ := get(base + "/health"); return code == http.StatusOK })
	waitFor(t, "mismatch gauge 0", func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "kestrel_transfer_ring_config_mismatch 0") && strings.Contains(body, "kestrel_transfer_fetch_paused 0")
	})
	if n := strings.Count(logs.String(), `level=ERROR msg="not routing"`); n != 1 {
		t.Errorf("%d error lines for one mismatch, want 1", n)
	}
	code, stdout, _ = runRing(t, bin, "set", "-c", cfgPath, "-partition-count", "271")
	if code != 0 || !strings.Contains(stdout, "unchanged") {
		t.Fatalf("set to the stored values: code %d\n%s", code, stdout)
	}
}

// lockedBuffer is a log sink safe for the process's writer goroutine and
// the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

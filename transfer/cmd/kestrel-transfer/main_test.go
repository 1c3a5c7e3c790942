package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/proctest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBinary builds the binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "kestrel-transfer-test"); buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "kestrel-transfer")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version=test-1", "-o", builtBin, ".")
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return builtBin
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

// writeConfig writes a transfer.yaml for srv and an HTTP address; extra
// is more YAML (stream and consumer may be given there as flow maps that
// replace the default ones).
func writeConfig(t *testing.T, srv *server.Server, httpAddr string, extra ...string) string {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "transfer.yaml")
	consumer := "consumer: {fetch_wait: 200ms}\n"
	more := strings.Join(extra, "\n")
	if strings.Contains(more, "consumer:") {
		consumer = ""
	}
	err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
nats: {urls: [%q]}
http: {listen: %q}
membership: {timeout: 1s, rejoin_hold: 200ms}
shutdown_timeout: 2s
`, srv.ClientURL(), httpAddr)+consumer+more+"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// streamReady fails the test unless KESTREL_INGEST exists with its ingest
// subjects open and the consumer "transfer" exists: what a 200 from
// /health promises.
func streamReady(t *testing.T, js jetstream.JetStream) jetstream.StreamConfig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "KESTREL_INGEST")
	if err != nil {
		t.Fatalf("health 200 but stream: %v", err)
	}
	sc := s.CachedInfo().Config
	if !slices.Equal(sc.Subjects, []string{"kestrel.ingest.>"}) {
		t.Fatalf("health 200 but stream subjects %v", sc.Subjects)
	}
	if _, err := js.Consumer(ctx, "KESTREL_INGEST", "transfer"); err != nil {
		t.Fatalf("health 200 but consumer: %v", err)
	}
	return sc
}

// TestBinary runs the real binary the way an operator does.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	code, out, _ := proctest.Run(t, bin, "-version")
	if code != 0 || strings.TrimSpace(out) != "kestrel-transfer test-1" {
		t.Fatalf("-version: %q, exit %d", out, code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("ring: {load: 1.0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := proctest.Run(t, bin, "-c", bad); code != 2 || !strings.Contains(stderr, "ring.load") {
		t.Fatalf("bad config: exit %d, stderr %q", code, stderr)
	}

	srv := natstest.StartServer(t)
	httpAddr := freeAddr(t)
	p := proctest.Start(t, bin, "-c", writeConfig(t, srv, httpAddr), "-log.level", "debug")
	base := "http://" + httpAddr
	wait.For(t, "health 503 without judges", 20*time.Second, func() bool {
		code, body := get(base + "/health")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no judge")
	})
	subj, _ := proto.NewSubjects("kestrel")
	j := natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	wait.For(t, "health 200 with a judge", 20*time.Second, func() bool { code, _ := get(base + "/health"); return code == http.StatusOK })

	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// /health said 200: the stream and the consumer exist now.
	sc := streamReady(t, js)
	if sc.Retention != jetstream.InterestPolicy || sc.Storage != jetstream.FileStorage || sc.Discard != jetstream.DiscardNew || sc.MaxBytes != 1<<30 || sc.Duplicates != 2*time.Minute {
		t.Fatalf("stream config %+v", sc)
	}
	now := time.Now().Unix()
	pts := []proto.Point{{Endpoint: "host01", Metric: "cpu.idle", Value: 3, Timestamp: now, Type: proto.Gauge, Step: 60}}
	if _, err := js.Publish(ctx, subj.Ingest("host01"), proto.EncodeBatch(pts), jetstream.WithMsgID("m1")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "point at the judge", 20*time.Second, func() bool { return len(j.Points()) == 1 })
	wait.For(t, "metrics", 20*time.Second, func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "process_cpu_seconds_total") && strings.Contains(body, "kestrel_transfer_ring_members 1") &&
			strings.Contains(body, "kestrel_transfer_messages_acked_total 1") && strings.Contains(body, `kestrel_transfer_points_rejected_total{reason="bad_step"} 0`)
	})

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited, exitErr := p.Wait(20 * time.Second)
	if !exited {
		t.Fatal("did not stop after SIGTERM")
	}
	if exitErr != nil {
		t.Fatalf("exit: %v", exitErr)
	}
	for _, step := range []string{"forwarding stopped", `step="stop membership and stream keeper"`, `step="stop http"`, `step="drain nats"`} {
		if !strings.Contains(p.Output.String(), step) {
			t.Errorf("shutdown log lacks %q", step)
		}
	}
}

// TestHealthWaitsForStream: /health says 200 only once the stream and
// the consumer are ready, not merely when NATS is connected, a judge is
// alive and the ring parameters agree. Here another stream holds the
// ingest subjects, so KESTREL_INGEST cannot take them: the transfer is
// connected, has a judge and agreed ring parameters, and must still
// answer 503 naming the stream. Once the other stream is gone, 200 means
// the stream takes batches and the transfer forwards them.
func TestHealthWaitsForStream(t *testing.T) {
	bin := buildBinary(t)
	srv := natstest.StartServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"kestrel.ingest.>"}}); err != nil {
		t.Fatal(err)
	}
	subj, _ := proto.NewSubjects("kestrel")
	j := natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	httpAddr := freeAddr(t)
	proctest.Start(t, bin, "-c", writeConfig(t, srv, httpAddr))
	base := "http://" + httpAddr
	wait.For(t, "judge in the ring and ring parameters agreed", 20*time.Second, func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "kestrel_transfer_ring_members 1") && strings.Contains(body, "kestrel_transfer_ring_config_mismatch 0")
	})
	wait.For(t, "health 503 naming the stream", 20*time.Second, func() bool {
		code, body := get(base + "/health")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "stream not ready") && strings.Contains(body, "KESTREL_INGEST")
	})
	if err := js.DeleteStream(ctx, "OTHER"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "health 200", 20*time.Second, func() bool { code, _ := get(base + "/health"); return code == http.StatusOK })
	streamReady(t, js)
	pts := []proto.Point{{Endpoint: "host01", Metric: "cpu.idle", Value: 3, Timestamp: time.Now().Unix(), Type: proto.Gauge, Step: 60}}
	if _, err := js.Publish(ctx, subj.Ingest("host01"), proto.EncodeBatch(pts), jetstream.WithMsgID("m1")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "point at the judge", 20*time.Second, func() bool { return len(j.Points()) == 1 })
}

// TestConsumerDeletedWhileRunning: the consumer is deleted under a
// running transfer. It recreates it within 5 s (counted in
// kestrel_transfer_consumer_recreated_total, logged), /health is 200
// again, and batches published afterwards are forwarded (the fetch loop
// keeps working on the new consumer).
func TestConsumerDeletedWhileRunning(t *testing.T) {
	bin := buildBinary(t)
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	j := natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	httpAddr := freeAddr(t)
	p := proctest.Start(t, bin, "-c", writeConfig(t, srv, httpAddr))
	base := "http://" + httpAddr
	wait.For(t, "health 200", 20*time.Second, func() bool { code, _ := get(base + "/health"); return code == http.StatusOK })
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publish := func(id string) {
		t.Helper()
		pts := []proto.Point{{Endpoint: "host01", Metric: "cpu.idle", Tags: []proto.Tag{{Key: "id", Value: id}}, Value: 1, Timestamp: time.Now().Unix(), Type: proto.Gauge, Step: 60}}
		if _, err := js.Publish(ctx, subj.Ingest("host01"), proto.EncodeBatch(pts), jetstream.WithMsgID(id)); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
	publish("m1")
	wait.For(t, "first point at the judge", 20*time.Second, func() bool { return len(j.Points()) == 1 })

	deleted := time.Now()
	if err := js.DeleteConsumer(ctx, "KESTREL_INGEST", "transfer"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "consumer recreated", 20*time.Second, func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "kestrel_transfer_consumer_recreated_total 1")
	})
	if took := time.Since(deleted); took > 5*time.Second {
		t.Fatalf("recreated %v after the deletion, want within 5s", took)
	}
	wait.For(t, "health 200 again", 20*time.Second, func() bool { code, _ := get(base + "/health"); return code == http.StatusOK })
	streamReady(t, js)
	publish("m2")
	wait.For(t, "second point at the judge", 20*time.Second, func() bool { return len(j.Points()) == 2 })
	if !strings.Contains(p.Output.String(), `level=ERROR msg="consumer was deleted: closed the ingest subjects and recreated it`) {
		t.Fatalf("recreation not logged:\n%s", p.Output.String())
	}
}

// runRing runs `kestrel-transfer ring args...` and returns its exit code,
// stdout and stderr.
func runRing(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	return proctest.Run(t, bin, append([]string{"ring"}, args...)...)
}

// TestRingCommands: `ring get` and `ring set` on the real binary, and a
// running transfer that stops routing while its ring parameters differ
// from the bucket's and resumes when `ring set` makes them equal.
func TestRingCommands(t *testing.T) {
	bin := buildBinary(t)
	srv := natstest.StartServer(t)
	httpAddr := freeAddr(t)
	cfgPath := writeConfig(t, srv, httpAddr)

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
	p := proctest.Start(t, bin, "-c", cfgPath)
	subj, _ := proto.NewSubjects("kestrel")
	natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	base := "http://" + httpAddr
	wantBody := `{"ring":"config differs from KESTREL_RING: partition_count 271 (config) != 512 (bucket), rejoin_hold 200ms (config) != 5s (bucket)"}`
	wait.For(t, "health 503 naming the differences", 20*time.Second, func() bool {
		code, body := get(base + "/health")
		return code == http.StatusServiceUnavailable && strings.TrimSpace(body) == wantBody
	})
	wait.For(t, "mismatch metrics", 20*time.Second, func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "kestrel_transfer_ring_config_mismatch 1") && strings.Contains(body, "kestrel_transfer_fetch_paused 1")
	})
	// The operator stores this transfer's values: it routes again.
	code, stdout, stderr = runRing(t, bin, "set", "-c", cfgPath, "-partition-count", "271", "-rejoin-hold", "200ms")
	if code != 0 {
		t.Fatalf("set back: code %d\n%s\n%s", code, stdout, stderr)
	}
	wait.For(t, "health 200", 20*time.Second, func() bool { code, _ := get(base + "/health"); return code == http.StatusOK })
	wait.For(t, "mismatch gauge 0", 20*time.Second, func() bool {
		_, body := get(base + "/metrics")
		return strings.Contains(body, "kestrel_transfer_ring_config_mismatch 0") && strings.Contains(body, "kestrel_transfer_fetch_paused 0")
	})
	if n := strings.Count(p.Output.String(), `level=ERROR msg="not routing"`); n != 1 {
		t.Errorf("%d error lines for one mismatch, want 1", n)
	}
	code, stdout, _ = runRing(t, bin, "set", "-c", cfgPath, "-partition-count", "271")
	if code != 0 || !strings.Contains(stdout, "unchanged") {
		t.Fatalf("set to the stored values: code %d\n%s", code, stdout)
	}
}

// TestStreamCommands: the existing stream and consumer settings win over
// a later transfer's config (it runs, warns and sets the mismatch
// gauges); `stream get` shows the differences, `stream apply` writes
// them (refused as a whole when NATS refuses replicas 3 on one server)
// while transfers keep forwarding.
func TestStreamCommands(t *testing.T) {
	bin := buildBinary(t)
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	plain := writeConfig(t, srv, freeAddr(t))
	code, _, stderr := proctest.Run(t, bin, "stream", "get", "-c", plain)
	if code != 1 || !strings.Contains(stderr, "cannot read stream KESTREL_INGEST (a transfer creates it)") {
		t.Fatalf("get without a stream: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := proctest.Run(t, bin, "stream", "frob"); code != 2 || !strings.Contains(stderr, "usage") {
		t.Fatalf("unknown command: exit %d, stderr %q", code, stderr)
	}

	j := natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	addrA, addrB := freeAddr(t), freeAddr(t)
	proctest.Start(t, bin, "-c", writeConfig(t, srv, addrA))
	wait.For(t, "first transfer healthy", 20*time.Second, func() bool { code, _ := get("http://" + addrA + "/health"); return code == http.StatusOK })

	// A second transfer with other settings: healthy, on the existing ones.
	other := writeConfig(t, srv, addrB, "stream: {replicas: 3, max_bytes: 1048576}", "consumer: {ack_wait: 45s, fetch_wait: 200ms}")
	b := proctest.Start(t, bin, "-c", other)
	wait.For(t, "second transfer healthy", 20*time.Second, func() bool { code, _ := get("http://" + addrB + "/health"); return code == http.StatusOK })
	wait.For(t, "mismatch gauges of the second transfer", 20*time.Second, func() bool {
		_, body := get("http://" + addrB + "/metrics")
		return strings.Contains(body, `kestrel_transfer_stream_config_mismatch{object="stream"} 1`) &&
			strings.Contains(body, `kestrel_transfer_stream_config_mismatch{object="consumer"} 1`)
	})
	if _, body := get("http://" + addrA + "/metrics"); !strings.Contains(body, `kestrel_transfer_stream_config_mismatch{object="stream"} 0`) {
		t.Fatal("first transfer reports a mismatch")
	}
	wait.For(t, "warning of the second transfer", 20*time.Second, func() bool {
		return strings.Contains(b.Output.String(), `level=WARN msg="config differs from the existing stream: using the existing settings (kestrel-transfer stream apply changes them)" stream=KESTREL_INGEST differences="replicas 3 (config) != 1 (stream), max_bytes 1048576 (config) != 1073741824 (stream)"`)
	})
	defAck, defPending := config.Default().Consumer.AckWait, config.Default().Consumer.MaxAckPending
	code, stdout, stderr := proctest.Run(t, bin, "stream", "get", "-c", other)
	if code != 0 || !strings.Contains(stdout, "stream KESTREL_INGEST: subjects [kestrel.ingest.>], replicas 1, max_bytes 1073741824, max_age 0s, duplicate_window 2m0s") ||
		!strings.Contains(stdout, fmt.Sprintf("consumer transfer: ack_wait %v, max_ack_pending %d", defAck, defPending)) ||
		!strings.Contains(stdout, fmt.Sprintf("differs (transfers use the existing settings; stream apply writes these): replicas 3 (config) != 1 (stream), max_bytes 1048576 (config) != 1073741824 (stream), ack_wait 45s (config) != %v (consumer)", defAck)) {
		t.Fatalf("get: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// replicas 3 on one server: NATS refuses, nothing changes.
	if code, stdout, stderr := proctest.Run(t, bin, "stream", "apply", "-c", other); code != 1 || !strings.Contains(stderr, "replicas") {
		t.Fatalf("apply of replicas 3: exit %d\n%s\n%s", code, stdout, stderr)
	}
	applied := writeConfig(t, srv, addrB, "stream: {max_bytes: 1048576}", "consumer: {ack_wait: 45s, fetch_wait: 200ms}")
	code, stdout, stderr = proctest.Run(t, bin, "stream", "apply", "-c", applied)
	if code != 0 || !strings.Contains(stdout, "stream KESTREL_INGEST changed: max_bytes 1048576 (config) != 1073741824 (stream)") ||
		!strings.Contains(stdout, fmt.Sprintf("consumer transfer changed: ack_wait 45s (config) != %v (consumer)", defAck)) ||
		!strings.Contains(stdout, "max_bytes 1048576, max_age 0s") || !strings.Contains(stdout, "same settings") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	wait.For(t, "second transfer's consumer settings now match", 20*time.Second, func() bool {
		_, body := get("http://" + addrB + "/metrics")
		return strings.Contains(body, `kestrel_transfer_stream_config_mismatch{object="consumer"} 0`) &&
			strings.Contains(body, `kestrel_transfer_stream_config_mismatch{object="stream"} 1`) // replicas still differ
	})
	wait.For(t, "first transfer now differs", 20*time.Second, func() bool {
		_, body := get("http://" + addrA + "/metrics")
		return strings.Contains(body, `kestrel_transfer_stream_config_mismatch{object="consumer"} 1`)
	})
	if code, stdout, _ := proctest.Run(t, bin, "stream", "apply", "-c", applied); code != 0 || !strings.HasPrefix(stdout, "unchanged") {
		t.Fatalf("second apply: exit %d\n%s", code, stdout)
	}
	// Still forwarding.
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pts := []proto.Point{{Endpoint: "host01", Metric: "cpu.idle", Value: 3, Timestamp: time.Now().Unix(), Type: proto.Gauge, Step: 60}}
	if _, err := js.Publish(ctx, subj.Ingest("host01"), proto.EncodeBatch(pts), jetstream.WithMsgID("m1")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "point at the judge", 20*time.Second, func() bool { return len(j.Points()) == 1 })
}

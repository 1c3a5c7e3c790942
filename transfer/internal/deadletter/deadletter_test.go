package deadletter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/nats-io/nats.go/jetstream"
)

func point(ep string, ts int64) proto.Point {
	return proto.Point{Endpoint: ep, Metric: "cpu.idle", Tags: []proto.Tag{{Key: "dc", Value: "eu"}}, Value: 1.5, Timestamp: ts, Type: proto.Gauge, Step: 60}
}

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	// Buffers safe to read while the NATS client's close callback may
	// still log to stderr.
	var out, errb syncbuf.Buffer
	code := Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

// Publish, then the command's list, replay (back to the ingest stream,
// then deleted) and purge, against a real NATS server.
func TestPublishListReplayPurge(t *testing.T) {
	srv := natstest.StartServer(t)
	cfg := config.Default()
	cfg.NATS.URLs = []string{srv.ClientURL()}
	path := filepath.Join(t.TempDir(), "transfer.yaml")
	if err := os.WriteFile(path, []byte("nats:\n  urls: ["+srv.ClientURL()+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subj := cfg.Subjects()
	if out, _, code := runCmd(t, "list", "-c", path); code != 0 || !strings.Contains(out, "no dead letters") {
		t.Fatalf("list before any: %d %q", code, out)
	}
	p := NewPublisher(js, subj, cfg.DeadLetter, "transfer-1")
	for i, ep := range []string{"poison-a", "poison-b"} {
		batch := proto.EncodeBatch([]proto.Point{point(ep, 60), point(ep, 120)})
		if err := p.Publish(ctx, batch, Info{Judge: "judge-2", Reason: "WRONGTYPE x", Attempts: 5}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	out, errOut, code := runCmd(t, "list", "-c", path)
	if code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	for _, want := range []string{"#1 ", "#2 ", "judge=judge-2", "attempts=5", "transfer=transfer-1", `reason="WRONGTYPE x"`,
		`"endpoint":"poison-a"`, `"endpoint":"poison-b"`, `"metric":"cpu.idle"`, "listed 2 dead letters (4 points)"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	// Replay #2 needs the ingest stream.
	if _, err := stream.Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCmd(t, "replay", "-c", path, "-seq", "2"); code != 0 || !strings.Contains(out, "replayed 1 dead letters (2 points)") {
		t.Fatalf("replay: %d %q %q", code, out, errOut)
	}
	ing, err := js.Stream(ctx, subj.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := ing.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("ingest stream after replay: %v %+v", err, info.State)
	}
	m, err := ing.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if pts, err := proto.DecodeBatch(m.Data); err != nil || len(pts) != 2 || pts[0].Endpoint != "poison-b" {
		t.Fatalf("replayed batch %v %v", pts, err)
	}
	if out, _, _ := runCmd(t, "list", "-c", path); !strings.Contains(out, "listed 1 dead letters") || strings.Contains(out, "poison-b") {
		t.Fatalf("after replay:\n%s", out)
	}
	if _, errOut, code := runCmd(t, "replay", "-c", path, "-seq", "2"); code != 1 || !strings.Contains(errOut, "no dead letter #2") {
		t.Fatalf("replaying a deleted one: %d %q", code, errOut)
	}
	if out, _, code := runCmd(t, "purge", "-c", path); code != 0 || !strings.Contains(out, "purged 1 dead letters") {
		t.Fatalf("purge: %d %q", code, out)
	}
	if out, _, _ := runCmd(t, "list", "-c", path); !strings.Contains(out, "listed 0 dead letters") {
		t.Fatalf("after purge:\n%s", out)
	}
}

// Bad usage exits 2 with the usage.
func TestUsage(t *testing.T) {
	if _, errOut, code := runCmd(t); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Fatalf("no args: %d %q", code, errOut)
	}
	if _, errOut, code := runCmd(t, "bogus"); code != 2 || !strings.Contains(errOut, `unknown deadletter command "bogus"`) {
		t.Fatalf("bogus: %d %q", code, errOut)
	}
	if _, errOut, code := runCmd(t, "list", "-c", "/nonexistent.yaml"); code != 2 || !strings.Contains(errOut, "cannot read config") {
		t.Fatalf("missing config: %d %q", code, errOut)
	}
}

// A full dead-letter stream refuses (discard new): the publisher reports
// it instead of the stream dropping older dead letters.
func TestFullStreamRefuses(t *testing.T) {
	srv := natstest.StartServer(t)
	cfg := config.Default()
	cfg.DeadLetter.MaxBytes = 600
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := NewPublisher(js, cfg.Subjects(), cfg.DeadLetter, "t")
	batch := proto.EncodeBatch([]proto.Point{point("poison", 60)})
	var perr error
	for i := 0; i < 50 && perr == nil; i++ {
		perr = p.Publish(ctx, batch, Info{Judge: "j", Reason: "r", Attempts: 1})
	}
	if perr == nil {
		t.Fatal("a full dead-letter stream accepted every publication")
	}
	st, _ := js.Stream(ctx, cfg.Subjects().DeadLetterStream())
	info, err := st.Info(ctx)
	if err != nil || info.State.FirstSeq != 1 {
		t.Fatalf("oldest dead letter dropped: %v %+v", err, info.State)
	}
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// check is a settable StreamCheck and RingCheck.
type check struct {
	mu  sync.Mutex
	why string
}

func (c *check) set(why string)   { c.mu.Lock(); c.why = why; c.mu.Unlock() }
func (c *check) get() string      { c.mu.Lock(); defer c.mu.Unlock(); return c.why }
func (c *check) NotReady() string { return c.get() }
func (c *check) Blocked() string  { return c.get() }

// TestHealth: /health is 200 only when every condition of "can do its job
// now" holds, and otherwise names the first one that does not, in the
// order NATS, stream, ring parameters, judges.
func TestHealth(t *testing.T) {
	srv := natstest.StartServer(t)
	cfg := config.Default()
	subj := cfg.Subjects()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	nc := natstest.Connect(t, srv)
	mem, err := membership.New(membership.Config{Timeout: 5 * time.Second, RejoinHold: 200 * time.Millisecond,
		SuspectAfter: 3, Ring: cfg.RingParams().Ring(), Self: "transfer-test"}, log, membership.NewMetrics(reg, "kestrel_transfer"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = mem.Run(ctx, nc, subj.Members()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	stream, ring := &check{}, &check{}
	web := httptest.NewServer(httpapi.Handler(nc, mem, stream, ring, reg))
	defer web.Close()
	health := func() (int, string) {
		t.Helper()
		resp, err := http.Get(web.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	expect := func(what string, code int, body string) {
		t.Helper()
		c, b := health()
		if c != code || !strings.HasPrefix(b, body) {
			t.Fatalf("%s: %d %q, want %d %q...", what, c, b, code, body)
		}
	}

	expect("no judge", http.StatusServiceUnavailable, "no judge alive")
	natstest.StartJudge(t, srv, subj, "judge-a", 100*time.Millisecond)
	deadline := time.Now().Add(20 * time.Second)
	for mem.Ring().Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("judge never joined")
		}
		time.Sleep(10 * time.Millisecond)
	}
	expect("all good", http.StatusOK, "ok: nats connected, stream and consumer ready, 1 judges [judge-a]")

	ring.set("config differs from KESTREL_RING: partition_count 271 (config) != 512 (bucket)")
	c, b := health()
	var got map[string]string
	if c != http.StatusServiceUnavailable || json.Unmarshal([]byte(b), &got) != nil || got["ring"] != ring.get() {
		t.Fatalf("ring blocked: %d %q", c, b)
	}
	stream.set("consumer transfer of stream KESTREL_INGEST is missing: closing the ingest subjects, recreating it")
	expect("stream not ready (before the ring)", http.StatusServiceUnavailable, "stream not ready: consumer transfer of stream KESTREL_INGEST is missing")
	nc.Close()
	expect("nats closed (before everything)", http.StatusServiceUnavailable, "nats not connected (CLOSED)")
}

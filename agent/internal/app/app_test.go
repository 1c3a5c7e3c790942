package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/lib/natsconn/natsconntest"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
)

// The whole agent against an embedded NATS: collected points and pushed
// points land in the stream; cancelling the context shuts it down.
func TestRunEndToEnd(t *testing.T) {
	srv := natstest.Start(t)
	subjects, _ := proto.NewSubjects("kestrel")
	srv.CreateStream(subjects.Stream(), subjects.IngestAll())

	cfg := config.Default()
	cfg.Hostname = "e2e-host"
	cfg.Tags = map[string]string{"dc": "test"}
	cfg.Step = 1
	cfg.NATS.URLs = []string{srv.URL()}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Publish.FlushTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := a.Addr()
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()

	resp, err := http.Post("http://"+addr+"/v1/push", "application/json", strings.NewReader(`[{"metric":"app.x","value":5}]`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "success" {
		t.Fatalf("push: %d %q", resp.StatusCode, b)
	}

	var sawAlive, sawPushed bool
	wait.For(t, "collected and pushed points in the stream", 20*time.Second, func() bool {
		for _, m := range srv.Messages(subjects.Stream()) {
			if m.Subject != "kestrel.ingest.e2e-host" {
				t.Fatalf("subject %s", m.Subject)
			}
			pts, err := proto.DecodeBatch(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pts {
				switch p.Metric {
				case "agent.alive":
					sawAlive = p.Endpoint == "e2e-host" && proto.FormatTags(p.Tags) == "dc=test" && p.Step == 1
				case "app.x":
					sawPushed = p.Endpoint == "e2e-host" && p.Step == 1 && len(p.Tags) == 0
				}
			}
		}
		return sawAlive && sawPushed
	})

	metrics := scrape(t, addr)
	for _, name := range []string{"process_cpu_seconds_total", "go_goroutines", "kestrel_agent_points_collected_total", "kestrel_agent_batches_published_total", "kestrel_agent_nats_async_errors_total"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}

// NATS down: the agent starts, says so at once, and stops within 2 s of
// the signal although collected batches wait in the retry queue (they
// are dropped and counted instead of waiting publish.flush_timeout).
func TestStopWhileNATSUnreachable(t *testing.T) {
	url, _ := natsconntest.Unreachable(t)
	cfg := config.Default()
	cfg.Step = 1
	cfg.NATS.URLs = []string{url}
	cfg.HTTP.Listen = "127.0.0.1:0"
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	wait.For(t, "cannot reach NATS logged", time.Second, func() bool {
		return strings.Contains(logs.String(), `msg="cannot reach NATS at `+url+`"`)
	})
	wait.For(t, "a collected batch queued", 10*time.Second, func() bool {
		return queued.MatchString(scrape(t, a.Addr()))
	})
	cancel()
	start := time.Now()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
		t.Logf("stopped in %v", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatalf("still running 2 s after the signal:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `msg="retry queue not flushed, dropped" batches=`) {
		t.Errorf("the dropped batches are not logged:\n%s", logs.String())
	}
}

var queued = regexp.MustCompile(`(?m)^kestrel_agent_retry_queue_batches [1-9]`)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

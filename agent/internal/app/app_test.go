package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/agent/internal/natstest"
	"github.com/kestrel-mon/kestrel/proto"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := Main("kestrel-agent", "1.2.3", []string{"-version"}, &out, io.Discard); code != 0 || out.String() != "kestrel-agent 1.2.3\n" {
		t.Fatalf("code %d output %q", code, out.String())
	}
}

func TestBadConfigExits2(t *testing.T) {
	var errb bytes.Buffer
	if code := Main("kestrel-agent", "dev", []string{"-c", "/nonexistent/agent.yaml"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "agent.yaml") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}

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
	cfg.Publish.FlushTimeout = config.Duration(2 * time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}

	resp, err := http.Post("http://"+addr+"/v1/push", "application/json", strings.NewReader(`[{"metric":"app.x","value":5}]`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "success" {
		t.Fatalf("push: %d %q", resp.StatusCode, b)
	}

	deadline := time.Now().Add(20 * time.Second)
	var sawAlive, sawPushed bool
	for !(sawAlive && sawPushed) {
		if time.Now().After(deadline) {
			t.Fatalf("stream lacks points: alive=%v pushed=%v", sawAlive, sawPushed)
		}
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
		time.Sleep(20 * time.Millisecond)
	}

	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"process_cpu_seconds_total", "go_goroutines", "kestrel_agent_points_collected_total", "kestrel_agent_batches_published_total"} {
		if !strings.Contains(string(b), name) {
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

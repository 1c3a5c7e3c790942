package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/config"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

const testRules = `
strategies:
  - {id: 15, endpoints: [host01], metric: cpu.idle, func: "all(#3)", operator: "<", rightValue: 5, maxStep: 3, priority: 0, note: low}
`

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testConfig is the config of judge node against the NATS at natsURL and
// the Redis at redisAddr: HTTP on a free port, testRules in a file of its
// own (returned too), a heartbeat every 50 ms.
func testConfig(t *testing.T, natsURL, redisAddr, node string) (config.Config, string) {
	t.Helper()
	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.NodeID = node
	cfg.NATS.URLs = []string{natsURL}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Redis.Addr = redisAddr
	cfg.RulesFile = rulesPath
	cfg.HeartbeatInterval = 50 * time.Millisecond
	return cfg, rulesPath
}

// start builds a judge from cfg and runs it; stop cancels Run and returns
// its error (the test fails if it does not return within 30 s).
func start(t *testing.T, cfg config.Config) (a *App, stop func() error) {
	t.Helper()
	a, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	return a, func() error {
		cancel()
		select {
		case err := <-runErr:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("judge did not stop")
			return nil
		}
	}
}

func TestJudgeOverNATS(t *testing.T) {
	ns := natstest.StartServer(t)
	rs := redistest.Start(t)
	cfg, rulesPath := testConfig(t, ns.ClientURL(), rs.Addr, "judge-test")
	cfg.Redis.OpTimeout = time.Second
	cfg.Ownership.Settle = 1100 * time.Millisecond
	cfg.Workers = 2
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj, _ := proto.NewSubjects("")
	members := make(chan proto.MemberMsg, 1000)
	msub, err := nc.Subscribe(subj.Members(), func(m *nats.Msg) {
		mm, err := proto.DecodeMemberMsg(m.Data)
		if err != nil {
			t.Errorf("bad member message: %v", err)
			return
		}
		members <- mm
	})
	if err != nil {
		t.Fatal(err)
	}
	defer msub.Unsubscribe()
	_ = nc.Flush()

	a, stop := start(t, cfg)

	// Heartbeats: two beats in order from this node.
	var last proto.MemberMsg
	for i := 0; i < 2; i++ {
		select {
		case m := <-members:
			if m.Node != "judge-test" || m.Kind != proto.MemberBeat || (i > 0 && m.Seq != last.Seq+1) {
				t.Fatalf("member message %+v after %+v", m, last)
			}
			last = m
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat")
		}
	}

	var pts []proto.Point
	for i := int64(1); i <= 3; i++ {
		pts = append(pts, proto.Point{Endpoint: "host01", Metric: "cpu.idle", Value: 1, Timestamp: i * 60, Step: 60})
	}
	// The judge is alone in its ring: it owns every partition, and serves
	// them once the settle period is over (MOVED until then, which a
	// transfer retries).
	moved := 0
	wait.Until(t, "the partitions settled", 10*time.Second, func() error {
		reply, err := nc.Request(subj.Judge("judge-test"), proto.EncodeBatch(pts), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		err = proto.DecodeJudgeReply(reply.Data)
		var je *proto.JudgeError
		if errors.As(err, &je) {
			if _, ok, _ := je.Moved(); ok {
				moved++
				return err
			}
		}
		if err != nil {
			t.Fatalf("reply %q: %v", reply.Data, err)
		}
		return nil
	})
	t.Logf("%d MOVED replies before the partitions settled", moved)
	reply, err := nc.Request(subj.Judge("judge-test"), []byte("not a batch"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.DecodeJudgeReply(reply.Data); err == nil {
		t.Fatal("bad batch answered +OK")
	}
	rdb := rs.Client()
	if n, _ := rdb.LLen(context.Background(), "event:p0").Result(); n != 1 {
		t.Fatalf("event:p0 has %d events", n)
	}

	base := "http://" + a.HTTPAddr()
	code, body := httpGet(t, base+"/history?key="+"host01/cpu.idle")
	if code != 200 {
		t.Fatalf("/history %d %s", code, body)
	}
	var hist []map[string]float64
	if err := json.Unmarshal([]byte(body), &hist); err != nil || len(hist) != 3 || hist[0]["timestamp"] != 180 || hist[2]["timestamp"] != 60 || hist[0]["value"] != 1 {
		t.Fatalf("/history body %s (%v)", body, err)
	}
	if code, _ := httpGet(t, base+"/history?key=nope/x"); code != 404 {
		t.Fatalf("/history unknown %d", code)
	}
	if code, _ := httpGet(t, base+"/history"); code != 400 {
		t.Fatalf("/history without key %d", code)
	}
	if code, body := httpGet(t, base+"/health"); code != 200 {
		t.Fatalf("/health %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/rules"); code != 200 || !strings.Contains(body, `"func":"all(#3)"`) {
		t.Fatalf("/rules %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/alarms"); code != 200 || !strings.Contains(body, "s_15_d2a3cf076e6613a23a3a010c6e6d647a") {
		t.Fatalf("/alarms %d %s", code, body)
	}
	code, body = httpGet(t, base+"/metrics")
	for _, want := range []string{fmt.Sprintf("kestrel_judge_points_received_total %d", 3*(moved+1)),
		fmt.Sprintf("kestrel_judge_points_moved_total %d", 3*moved), `kestrel_judge_alarms_written_total{status="PROBLEM"} 1`,
		`kestrel_judge_requests_total{result="bad_batch"} 1`, "process_cpu_seconds_total", "kestrel_judge_series 1"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// SIGHUP reload: a bad file keeps the rules, a good one replaces them.
	_ = os.WriteFile(rulesPath, []byte("strategies: [{id: 1}]"), 0o644)
	if err := a.Reload(); err == nil || a.Rules.Get().ForMetric("cpu.idle") == nil {
		t.Fatalf("bad reload: %v", err)
	}
	_ = os.WriteFile(rulesPath, []byte(strings.ReplaceAll(testRules, "cpu.idle", "cpu.busy")), 0o644)
	if err := a.Reload(); err != nil || a.Rules.Get().ForMetric("cpu.busy") == nil {
		t.Fatalf("good reload: %v", err)
	}

	// Redis down: /health says why.
	rs.Stop()
	if code, body := httpGet(t, base+"/health"); code != 503 || !strings.Contains(body, "redis") {
		t.Fatalf("/health with redis down %d %s", code, body)
	}
	rs.Start()

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The last member message is a leave, and no beat follows it.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-members:
			if m.Kind != proto.MemberLeave {
				continue
			}
			select {
			case m2 := <-members:
				t.Fatalf("message after leave: %+v", m2)
			default:
			}
			// The subject has no responder any more.
			if _, err := nc.Request(subj.Judge("judge-test"), proto.EncodeBatch(pts), time.Second); err == nil {
				t.Fatal("judge still answers after shutdown")
			}
			return
		case <-deadline:
			t.Fatal("no leave message")
		}
	}
}

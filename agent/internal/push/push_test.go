package push

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/agent/internal/natsconn"
	"github.com/kestrel-mon/kestrel/agent/internal/natstest"
	"github.com/kestrel-mon/kestrel/agent/internal/publish"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var subjects, _ = proto.NewSubjects("kestrel")

const now = 1_700_000_000

type fixture struct {
	srv  *natstest.Server
	nc   *nats.Conn
	pub  *publish.Publisher
	pm   *publish.Metrics
	m    *Metrics
	http *httptest.Server
}

func setup(t *testing.T, withStream bool, maxBatches int) *fixture {
	t.Helper()
	srv := natstest.Start(t)
	if withStream {
		srv.CreateStream(subjects.Stream(), subjects.IngestAll())
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := natsconn.Connect(config.NATS{URLs: []string{srv.URL()}, ConnectTimeout: config.Duration(2 * time.Second)}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	reg := prometheus.NewRegistry()
	pm := publish.NewMetrics(reg)
	pub, err := publish.New(publish.Config{
		Subject: subjects.Ingest("agent01"), MsgIDPrefix: publish.NewMsgIDPrefix("agent01"),
		Timeout: 2 * time.Second, MaxBatches: maxBatches, MaxBytes: 1 << 20,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}, nc, pm, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pub.Stop(ctx)
	})
	m := NewMetrics(reg)
	h := NewHandler(Defaults{Endpoint: "agent01", Step: 60}, 1<<16, pub, m, log)
	h.Now = func() time.Time { return time.Unix(now, 0) }
	health := func() (bool, string) {
		if !nc.IsConnected() {
			return false, "nats not connected"
		}
		return true, ""
	}
	hs := httptest.NewServer(NewMux(h, health, reg))
	t.Cleanup(hs.Close)
	return &fixture{srv: srv, nc: nc, pub: pub, pm: pm, m: m, http: hs}
}

func (f *fixture) post(t *testing.T, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(f.http.URL+"/v1/push", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (f *fixture) streamPoints(t *testing.T) []proto.Point {
	t.Helper()
	var out []proto.Point
	for _, m := range f.srv.Messages(subjects.Stream()) {
		pts, err := proto.DecodeBatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pts...)
	}
	return out
}

func TestPushAllValid(t *testing.T) {
	f := setup(t, true, 100)
	code, body, _ := f.post(t, `[
 {"endpoint":"web01","metric":"cpu.idle","value":12.5,"step":60,"counterType":"GAUGE","tags":"b=2,a=1","timestamp":1699999980},
 {"endpoint":"web01","metric":"net.in","value":"42","step":30,"counterType":"COUNTER","tags":"","timestamp":1699999990}
]`)
	if code != 200 || body != "success" {
		t.Fatalf("got %d %q, want 200 success", code, body)
	}
	// The reply came after the ack: the points are in the stream.
	pts := f.streamPoints(t)
	if len(pts) != 2 {
		t.Fatalf("stream holds %d points", len(pts))
	}
	if p := pts[0]; p.Endpoint != "web01" || p.Metric != "cpu.idle" || p.Value != 12.5 || proto.FormatTags(p.Tags) != "a=1,b=2" || p.Timestamp != 1699999980 || p.Step != 60 {
		t.Fatalf("point 0: %+v", p)
	}
	if p := pts[1]; p.Value != 42 || p.Type != proto.Counter || p.Step != 30 {
		t.Fatalf("point 1: %+v", p)
	}
	if got := testutil.ToFloat64(f.m.Accepted); got != 2 {
		t.Fatalf("accepted = %v", got)
	}
}

func TestPushFillsMissingFields(t *testing.T) {
	f := setup(t, true, 100)
	code, body, _ := f.post(t, `[{"metric":"app.requests","value":7}]`)
	if code != 200 || body != "success" {
		t.Fatalf("got %d %q", code, body)
	}
	pts := f.streamPoints(t)
	if len(pts) != 1 {
		t.Fatalf("%d points", len(pts))
	}
	p := pts[0]
	if p.Endpoint != "agent01" || p.Step != 60 || p.Type != proto.Gauge || p.Timestamp != now || p.Value != 7 || len(p.Tags) != 0 {
		t.Fatalf("defaults not filled: %+v", p)
	}
}

func TestPushBadBodies(t *testing.T) {
	f := setup(t, true, 100)
	cases := []struct {
		name, body string
		code       int
		want       []string
	}{
		{"empty", "", 400, []string{"body is empty"}},
		{"bad json", `[{"metric":`, 400, []string{"not valid JSON"}},
		{"not array", `{"metric":"a","value":1}`, 400, []string{"not a JSON array"}},
		{"empty array", `[]`, 400, []string{"array is empty"}},
		{"no valid point", `[{"metric":"a","value":1,"counterType":"gauge"},null,{"metric":"b"}]`, 400, []string{
			"3 items rejected",
			"item 0: counterType must be GAUGE, COUNTER or DERIVE",
			"item 1: item is null",
			"item 2: value is missing",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := f.post(t, tc.body)
			if code != tc.code {
				t.Fatalf("code %d, want %d (%s)", code, tc.code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %q lacks %q", body, w)
				}
			}
		})
	}
	if got := testutil.ToFloat64(f.m.Rejected.WithLabelValues(proto.ReasonCounterType.String())); got != 1 {
		t.Fatalf("bad_counter_type rejections = %v", got)
	}
	if got := testutil.ToFloat64(f.m.Rejected.WithLabelValues(proto.ReasonNil.String())); got != 1 {
		t.Fatalf("nil rejections = %v", got)
	}
	if got := testutil.ToFloat64(f.m.Rejected.WithLabelValues(proto.ReasonNoValue.String())); got != 1 {
		t.Fatalf("empty_value rejections = %v", got)
	}
}

func TestPushMixed(t *testing.T) {
	f := setup(t, true, 100)
	code, body, hdr := f.post(t, `[
 {"metric":"ok.a","value":1},
 {"metric":"bad","value":true},
 {"metric":"ok.b","value":"2"},
 {"metric":"future","value":1,"timestamp":1800000000},
 "junk",
 {"metric":"ok.c","value":3}
]`)
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s %q", code, hdr.Get("Content-Type"), body)
	}
	var rep MixedReply
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	if rep.Accepted != 3 || rep.RejectedCount != 3 || len(rep.Rejected) != 3 {
		t.Fatalf("reply %+v", rep)
	}
	want := []struct {
		idx    int
		reason string
	}{{1, "bad_value"}, {3, "future_timestamp"}, {4, "bad_json"}}
	for i, w := range want {
		r := rep.Rejected[i]
		if r.Index != w.idx || r.Reason != w.reason || !strings.HasPrefix(r.Error, "item ") {
			t.Fatalf("rejection %d = %+v, want index %d reason %s", i, r, w.idx, w.reason)
		}
	}
	pts := f.streamPoints(t)
	if len(pts) != 3 || pts[0].Metric != "ok.a" || pts[2].Metric != "ok.c" {
		t.Fatalf("stream: %+v", pts)
	}
}

func TestPushMethodAndSize(t *testing.T) {
	f := setup(t, true, 100)
	resp, err := http.Get(f.http.URL + "/v1/push")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET /v1/push: %d allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	big := `[{"metric":"a","value":1,"tags":"` + strings.Repeat("x", 1<<16) + `"}]`
	code, body, _ := f.post(t, big)
	if code != 413 {
		t.Fatalf("big body: %d %q", code, body)
	}
}

func TestPushQueuedWhenNoStream(t *testing.T) {
	f := setup(t, false, 100)
	code, body, _ := f.post(t, `[{"metric":"a","value":1}]`)
	if code != 200 || body != "success" {
		t.Fatalf("got %d %q", code, body)
	}
	if n, _ := f.pub.Depth(); n != 1 {
		t.Fatalf("queue depth %d, want 1", n)
	}
}

func TestPushQueueFull(t *testing.T) {
	f := setup(t, false, 2)
	for i := range 2 {
		if code, body, _ := f.post(t, `[{"metric":"a","value":1}]`); code != 200 {
			t.Fatalf("push %d: %d %q", i, code, body)
		}
	}
	code, body, hdr := f.post(t, `[{"metric":"b","value":1}]`)
	if code != 503 || !strings.Contains(body, "retry queue is full") || hdr.Get("Retry-After") == "" {
		t.Fatalf("got %d %q", code, body)
	}
	if got := testutil.ToFloat64(f.pm.DroppedBatches.WithLabelValues(publish.DropQueueFull)); got != 0 {
		t.Fatalf("a push evicted queued data: %v", got)
	}
	if n, _ := f.pub.Depth(); n != 2 {
		t.Fatalf("depth %d", n)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	f := setup(t, true, 100)
	resp, err := http.Get(f.http.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Fatalf("health: %d %q", resp.StatusCode, b)
	}
	f.srv.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for f.nc.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resp, err = http.Get(f.http.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "nats") {
		t.Fatalf("health while down: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(f.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"kestrel_agent_push_rejected_total{reason=\"bad_value\"}", "kestrel_agent_retry_queue_batches", "kestrel_agent_dropped_batches_total"} {
		if !bytes.Contains(b, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

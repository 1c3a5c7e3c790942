package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/publish"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
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
	logs *syncbuf.Buffer // the handler's log
}

func setup(t *testing.T, withStream bool, maxBatches int) *fixture {
	t.Helper()
	srv := natstest.Start(t)
	if withStream {
		srv.CreateStream(subjects.Stream(), subjects.IngestAll())
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := natsconn.Connect(t.Context(), natsConfig(srv.URL()), natsconn.Options{Log: log, Extra: publish.NATSOptions()})
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
	logs := &syncbuf.Buffer{}
	h := NewHandler(Defaults{Endpoint: "agent01", Step: 60}, 1<<16, pub, m, slog.New(slog.NewTextHandler(logs, nil)))
	h.Now = func() time.Time { return time.Unix(now, 0) }
	health := func() (bool, string) {
		if !nc.IsConnected() {
			return false, "nats not connected"
		}
		return true, ""
	}
	hs := httptest.NewServer(NewMux(h, health, reg))
	t.Cleanup(hs.Close)
	return &fixture{srv: srv, nc: nc, pub: pub, pm: pm, m: m, http: hs, logs: logs}
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
		reason     string // request-level reason label of the 400
		want       []string
	}{
		{"empty", "", 400, "empty_body", []string{"body is empty"}},
		{"blank", " \n\t", 400, "empty_body", []string{"body is empty"}},
		{"bad json", `[{"metric":`, 400, "not_json", []string{"not valid JSON"}},
		{"not array", `{"metric":"a","value":1}`, 400, "not_array", []string{"not a JSON array"}},
		{"empty array", `[]`, 400, "empty_array", []string{"array is empty"}},
		{"no valid point", `[{"metric":"a","value":1,"counterType":"gauge"},null,{"metric":"b"}]`, 400, "no_valid_point", []string{
			"3 items rejected",
			"item 0: counterType must be GAUGE, COUNTER or DERIVE",
			"item 1: item is null",
			"item 2: value is missing",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(f.m.Requests.WithLabelValues("400", tc.reason))
			code, body, _ := f.post(t, tc.body)
			if code != tc.code {
				t.Fatalf("code %d, want %d (%s)", code, tc.code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %q lacks %q", body, w)
				}
			}
			if got := testutil.ToFloat64(f.m.Requests.WithLabelValues("400", tc.reason)) - before; got != 1 {
				t.Errorf("push_requests_total{code=400,reason=%s} rose by %v, want 1", tc.reason, got)
			}
		})
	}
	if got := testutil.ToFloat64(f.m.Requests.WithLabelValues("400", "")); got != 0 {
		t.Errorf("push_requests_total{code=400} without a reason = %v", got)
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
	for _, name := range []string{"kestrel_agent_push_rejected_total{reason=\"bad_value\"}", "kestrel_agent_retry_queue_batches", "kestrel_agent_dropped_batches_total",
		"kestrel_agent_push_rejected_total{reason=\"endpoint_control_char\"}", "kestrel_agent_push_rejected_total{reason=\"empty_tag_key\"}",
		`kestrel_agent_push_requests_total{code="499",reason=""}`, `kestrel_agent_push_requests_total{code="400",reason="not_json"}`} {
		if !bytes.Contains(b, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// A NUL (or any control character) in the endpoint, the metric or a tag,
// and a tag with an empty key, are rejected with their proto reason, counted
// and listed; the valid neighbours are published.
func TestPushRejectsControlCharactersAndEmptyTagKeys(t *testing.T) {
	f := setup(t, true, 100)
	code, body, _ := f.post(t, `[
 {"endpoint":"web\u000001","metric":"cpu.idle","value":1},
 {"metric":"cpu\u0000idle","value":1},
 {"metric":"cpu.idle","value":1,"tags":"iface=eth0\u0000"},
 {"metric":"cpu.idle","value":1,"tags":"novalue,=x"},
 {"metric":"cpu.idle","value":1,"tags":"a=\t"},
 {"metric":"cpu.idle","value":1,"tags":"\u0085=1"},
 {"endpoint":"hôte","metric":"cpu.idle","value":1,"tags":"chemin=/é"}
]`)
	if code != 200 {
		t.Fatalf("got %d %q", code, body)
	}
	var rep MixedReply
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	want := []string{"endpoint_control_char", "metric_control_char", "tag_control_char", "empty_tag_key", "tag_control_char", "tag_control_char"}
	if rep.Accepted != 1 || rep.RejectedCount != len(want) {
		t.Fatalf("reply %+v", rep)
	}
	for i, w := range want {
		if rep.Rejected[i].Index != i || rep.Rejected[i].Reason != w {
			t.Errorf("rejection %d = %+v, want reason %s", i, rep.Rejected[i], w)
		}
	}
	for r, n := range map[proto.Reason]float64{proto.ReasonEndpointControl: 1, proto.ReasonMetricControl: 1, proto.ReasonTagEmptyKey: 1, proto.ReasonTagControl: 3} {
		if got := testutil.ToFloat64(f.m.Rejected.WithLabelValues(r.String())); got != n {
			t.Errorf("push_rejected_total{reason=%s} = %v, want %v", r, got, n)
		}
	}
	pts := f.streamPoints(t)
	if len(pts) != 1 || pts[0].Endpoint != "hôte" {
		t.Fatalf("stream: %+v", pts)
	}
	// No valid point at all: a 400 naming the item and the reason.
	code, body, _ = f.post(t, `[{"endpoint":"h\u0000","metric":"m","value":1}]`)
	if code != 400 || !strings.Contains(body, "item 0: endpoint contains a control character") {
		t.Fatalf("got %d %q", code, body)
	}
}

// A client that gives up while the agent waits for the JetStream ack is
// counted as code 499 (not 500) and logged at INFO (not WARN); its points
// stay queued and are still published.
func TestPushAbandonedWhileWaiting(t *testing.T) {
	f := setup(t, false, 100)
	// A plain subscriber on the ingest subject takes the publish and never
	// answers: the JetStream publish waits for its ack (2s timeout).
	got := make(chan struct{}, 10)
	sub, err := f.nc.Subscribe(subjects.Ingest("agent01"), func(*nats.Msg) { got <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.http.URL+"/v1/push", strings.NewReader(`[{"metric":"gone","value":1}]`))
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-got: // the handler is waiting for the ack
	case <-time.After(10 * time.Second):
		t.Fatal("the push was not published")
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the request was not abandoned")
	}
	wait.For(t, "the request counted", 10*time.Second, func() bool { return requestsCounted(f.m) > 0 })
	if n := testutil.ToFloat64(f.m.Requests.WithLabelValues("499", "")); n != 1 {
		t.Errorf("push_requests_total{code=499} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(f.m.Requests.WithLabelValues("500", "")); n != 0 {
		t.Errorf("push_requests_total{code=500} = %v, want 0", n)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "level=INFO") || !strings.Contains(logs, "push abandoned by the client") || strings.Contains(logs, "level=WARN") {
		t.Errorf("log %q: want one INFO line and no WARN", logs)
	}
	if n := testutil.ToFloat64(f.m.Accepted); n != 1 {
		t.Errorf("push_accepted_total = %v, want 1 (the point stays queued)", n)
	}
	// The point was queued: once the stream exists it is published.
	f.srv.CreateStream(subjects.Stream(), subjects.IngestAll())
	wait.For(t, "the abandoned point in the stream", 10*time.Second, func() bool {
		pts := f.streamPoints(t)
		return len(pts) == 1 && pts[0].Metric == "gone"
	})
}

// A client that goes away in the middle of its body is counted as 499,
// not as a 400 "cannot read body".
func TestPushAbandonedWhileSendingBody(t *testing.T) {
	f := setup(t, true, 100)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	body := `[{"metric":"cut","value":1}]`
	_, err = fmt.Fprintf(c, "POST /v1/push HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body)+100, body)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	wait.For(t, "the request counted", 10*time.Second, func() bool { return requestsCounted(f.m) > 0 })
	if n := testutil.ToFloat64(f.m.Requests.WithLabelValues("499", "")); n != 1 {
		t.Errorf("push_requests_total{code=499} = %v, want 1", n)
	}
	if n := requestsCounted(f.m); n != 1 {
		t.Errorf("%v requests counted, want 1 (as 499)", n)
	}
	if logs := f.logs.String(); strings.Contains(logs, "level=WARN") {
		t.Errorf("log %q: want no WARN", logs)
	}
}

// requestsCounted sums kestrel_agent_push_requests_total over every code
// and reason.
func requestsCounted(m *Metrics) float64 {
	var sum float64
	for _, c := range codes {
		sum += testutil.ToFloat64(m.Requests.WithLabelValues(strconv.Itoa(c), ""))
	}
	for _, r := range badRequestReasons() {
		sum += testutil.ToFloat64(m.Requests.WithLabelValues("400", r.String()))
	}
	return sum
}

// natsConfig is the nats block of a client of the test server at url.
func natsConfig(url string) natsconn.Config {
	c := natsconn.Default()
	c.URLs = []string{url}
	c.ConnectTimeout = 2 * time.Second
	return c
}

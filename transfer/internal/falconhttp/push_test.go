package falconhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingesttest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type pushReply struct {
	Msg  string                      `json:"msg"`
	Data ingesttest.TransferResponse `json:"data"`
}

type fixture struct {
	*ingesttest.Fixture
	url string
}

func newFixture(t *testing.T, maxBody int) *fixture {
	t.Helper()
	f := &fixture{Fixture: ingesttest.New(t, nil)}
	mux := http.NewServeMux()
	mux.Handle("/api/push", NewHandler(maxBody, f.Pub))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	f.url = ts.URL + "/api/push"
	return f
}

func (f *fixture) post(t *testing.T, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(f.url, "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

var items = ingesttest.Items

func marshal(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// A push answered as Open-Falcon does, after its points are stored;
// invalid items counted in the reply and by reason.
func TestPush(t *testing.T) {
	f := newFixture(t, 1<<20)
	mvs := append(items("db01", 8), &ingesttest.MetricValue{Endpoint: "db01", Metric: "m", Value: true, Step: 60, Type: "GAUGE"},
		&ingesttest.MetricValue{Endpoint: "db01", Metric: "m", Value: 1, Step: 0, Type: "GAUGE"})
	resp, body := f.post(t, marshal(mvs))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=UTF-8" {
		t.Fatalf("%s %s: %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	var rep pushReply
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("reply %s: %v", body, err)
	}
	if rep.Msg != "success" || rep.Data.Message != "ok" || rep.Data.Total != 10 || rep.Data.Invalid != 2 {
		t.Fatalf("reply %s", body)
	}
	if !bytes.HasPrefix(body, []byte(`{"msg":"success","data":{"Message":"ok","Total":10,"Invalid":2,"Latency":`)) {
		t.Fatalf("reply shape %s", body)
	}
	got := map[string]int{}
	for _, p := range f.Stored(t) {
		got[p.Key()]++
	}
	if len(got) != 8 || got["db01/cpu.idle/i=7"] != 1 {
		t.Fatalf("stored %v", got)
	}
	if f.Rejected(listener, proto.ReasonBadValue) != 1 || f.Rejected(listener, proto.ReasonBadStep) != 1 || f.Accepted(listener) != 8 {
		t.Fatal("rejected or accepted points not counted")
	}
	// A body with no valid point is still answered as Open-Falcon does.
	resp, body = f.post(t, strings.NewReader(`[null]`))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Total":1,"Invalid":1`) {
		t.Fatalf("%s: %s", resp.Status, body)
	}
}

// Bodies that are not a push: 400 with a message; other methods 405;
// over max_request_bytes 413 (with or without a Content-Length); all
// counted, nothing stored.
func TestBadRequests(t *testing.T) {
	f := newFixture(t, 4<<10)
	for body, want := range map[string]string{"": "body is empty", " \n": "body is empty", `{"endpoint":"h"}`: "not a JSON array",
		`[{"endpoint":"h"},`: "not valid JSON", "\x00\xff": "not a JSON array", `[1]]`: "not valid JSON"} {
		resp, b := f.post(t, strings.NewReader(body))
		if resp.StatusCode != 400 || !strings.Contains(string(b), want) {
			t.Errorf("%q: %s %s, want 400 %q", body, resp.Status, b, want)
		}
	}
	f.WantRefused(t, listener, ingest.RefusedMalformed, 6)
	resp, err := http.Get(f.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %s", resp.Status)
	}
	big, _ := json.Marshal(items("big", 100))
	if resp, b := f.post(t, bytes.NewReader(big)); resp.StatusCode != 413 {
		t.Errorf("large body: %s %s", resp.Status, b)
	}
	chunked := io.MultiReader(bytes.NewReader(big)) // no Content-Length: sent chunked
	if resp, b := f.post(t, chunked); resp.StatusCode != 413 {
		t.Errorf("large chunked body: %s %s", resp.Status, b)
	}
	f.WantRefused(t, listener, ingest.RefusedTooLarge, 2)
	if resp, b := f.post(t, marshal(items("ok", 3))); resp.StatusCode != 200 {
		t.Errorf("after bad requests: %s %s", resp.Status, b)
	}
	f.WantStored(t, 3)
	if v := testutil.ToFloat64(f.Met.Requests.WithLabelValues(listener)); v != 10 {
		t.Errorf("%v requests counted, want 10", v)
	}
}

// The stream cannot store: 503 with Retry-After, never 200; the points
// answered 200 before are in the stream.
func TestUnavailableIsNever200(t *testing.T) {
	f := newFixture(t, 1<<20)
	if resp, b := f.post(t, marshal(items("before", 4))); resp.StatusCode != 200 {
		t.Fatalf("%s %s", resp.Status, b)
	}
	f.WantStored(t, 4)
	if err := f.JS.DeleteStream(context.Background(), f.Subj.Stream()); err != nil {
		t.Fatal(err)
	}
	resp, b := f.post(t, marshal(items("deleted", 4)))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("stream deleted: %s %s", resp.Status, b)
	}
	f.Srv.Shutdown()
	if resp, b := f.post(t, marshal(items("down", 4))); resp.StatusCode != 503 {
		t.Fatalf("nats down: %s %s", resp.Status, b)
	}
	f.WantRefused(t, listener, ingest.RefusedUnavailable, 2)
	// A client that gives up while its points wait for the stream: the
	// handler stops waiting, counts it, and the next request is served.
	impatient := &http.Client{Timeout: 300 * time.Millisecond}
	if _, err := impatient.Post(f.url, "application/json", marshal(items("gone", 4))); err == nil {
		t.Fatal("no timeout while the stream is down")
	}
	wait.For(t, "client gone counted", 5*time.Second, func() bool { return f.Refused(listener, ingest.RefusedTimeout) == 1 })
	if resp, b := f.post(t, marshal(items("down", 4))); resp.StatusCode != 503 {
		t.Fatalf("after a client left: %s %s", resp.Status, b)
	}
}

package opentsdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet/telnettest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func start(t *testing.T, f *telnettest.Fixture) *Server {
	t.Helper()
	return telnettest.Start(t, f, Start)
}

// post sends body to path on s and returns the status, Retry-After and
// body of the answer.
func post(t *testing.T, s *Server, path, body string, hdr ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

func dp(metric string, ts int64, value any, tags string) string {
	v, _ := json.Marshal(value)
	return fmt.Sprintf(`{"metric":%q,"timestamp":%d,"value":%s,"tags":{%s}}`, metric, ts, v, tags)
}

// put lines over telnet: stored as they arrive, the endpoint from its
// tag, milliseconds as seconds; version and help answer; exit closes.
func TestTelnetPut(t *testing.T) {
	f := telnettest.New(t, nil)
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	ts := time.Now().Unix() - 10
	c.Send(t, fmt.Sprintf("put sys.cpu.user %d 42.5 host=web01 cpu=0", ts),
		fmt.Sprintf("put sys.cpu.user %d 7 host=web01 endpoint=lb1 cpu=1", ts*1000+999))
	pts := f.WaitStored(t, 2) // the connection is still open
	want := []string{
		fmt.Sprint(proto.Point{Endpoint: "web01", Metric: "sys.cpu.user", Tags: []proto.Tag{{Key: "cpu", Value: "0"}}, Value: 42.5, Timestamp: ts, Type: proto.Gauge, Step: 60}),
		fmt.Sprint(proto.Point{Endpoint: "lb1", Metric: "sys.cpu.user", Tags: []proto.Tag{{Key: "cpu", Value: "1"}, {Key: "host", Value: "web01"}}, Value: 7, Timestamp: ts, Type: proto.Gauge, Step: 60}),
	}
	for i := range want {
		if got := fmt.Sprint(pts[i]); got != want[i] {
			t.Errorf("point %d: %s, want %s", i, got, want[i])
		}
	}
	c.Send(t, "version")
	if got := c.Line(t); !strings.HasPrefix(got, "net.opentsdb kestrel-transfer ") {
		t.Fatalf("version: %q", got)
	}
	c.Send(t, "help")
	if got := c.Line(t); got != "available commands: put version help exit quit" {
		t.Fatalf("help: %q", got)
	}
	c.Send(t, fmt.Sprintf("put m %d 1 host=h", ts), "exit", fmt.Sprintf("put never %d 1 host=h", ts))
	if rest := c.Closed(t); rest != "" {
		t.Fatalf("after exit: %q", rest)
	}
	f.WaitStored(t, 3)
	if v := testutil.ToFloat64(f.Met.PointsAccepted.WithLabelValues(ingest.ListenerOpenTSDB)); v != 3 {
		t.Fatalf("accepted %v", v)
	}
}

// Bad put lines get OpenTSDB's error line, are counted, and the session
// goes on.
func TestTelnetPutErrors(t *testing.T) {
	f := telnettest.New(t, nil)
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	f.CheckBadLines(t, c, ingest.ListenerOpenTSDB, []telnettest.BadLine{
		{Line: "put m 1700000000 1", Reply: "put: illegal argument: not enough arguments (need least 4, got 3)", Reason: proto.ReasonBadJSON},
		{Line: "put m soon 1 host=h", Reply: `put: invalid value: invalid timestamp: "soon"`, Reason: proto.ReasonBadJSON},
		{Line: "put m 1700000000 abc host=h", Reply: `put: invalid value: value is not a number or numeric string: "abc"`, Reason: proto.ReasonBadValue},
		{Line: "put m 1700000000 1 host", Reply: "put: illegal argument: invalid tag: host", Reason: proto.ReasonBadJSON},
		{Line: "put m 1700000000 1 cpu=0", Reply: "put: illegal argument: no endpoint tag: one of endpoint, host is required", Reason: proto.ReasonNoEndpoint},
		{Line: "put m 99999999999999 1 host=h", Reply: "put: illegal argument: timestamp is more than 10 minutes in the future", Reason: proto.ReasonFuture},
		{Line: "get m", Reply: "unknown command: get.  Try `help'.", Reason: proto.OK},
	})
	c.Send(t, fmt.Sprintf("put good %d 1 host=h", time.Now().Unix()))
	f.WaitStored(t, 1)
}

// POST /api/put on the telnet port: OpenTSDB's answers, success only for
// stored points.
func TestHTTPPut(t *testing.T) {
	f := telnettest.New(t, nil)
	f.Cfg.MaxRequestBytes = 4096
	s := start(t, f)
	ts := time.Now().Unix() - 10
	good := dp("sys.cpu.nice", ts, 18, `"host":"web01","dc":"lga"`)
	bad := dp("", ts, 1, `"host":"web01"`)
	for i, tc := range []struct {
		path, body string
		code       int
		reply      string
		stored     int
	}{
		{"/api/put", good, 204, "", 1},
		{"/api/put/", "[" + dp("m", ts*1000, "3.5", `"endpoint":"e","host":"h"`) + "," + good + "]", 204, "", 3},
		{"/api/put?summary", "[" + good + "," + good + "]", 200, `{"success":2,"failed":0}`, 5},
		{"/api/put?summary", "[" + good + "," + bad + "]", 400, `{"success":1,"failed":1}`, 6},
		{"/api/put?details", "[" + good + "," + bad + "]", 400,
			`{"success":1,"failed":1,"errors":[{"datapoint":` + bad + `,"error":"Metric name was empty"}]}`, 7},
		{"/api/put?details", good, 200, `{"success":1,"failed":0}`, 8},
		{"/api/put", "[" + bad + "," + good + "]", 400,
			`{"error":{"code":400,"message":"One or more data points had errors","details":"Please see the TSD logs or append \"details\" to the put request"}}`, 9},
		{"/api/put", bad, 400, `{"error":{"code":400,"message":"One or more data points had errors"`, 9},
		{"/api/put", "[" + good, 400, `{"error":{"code":400,"message":"Unable to parse the given JSON: unexpected end of JSON input"}}`, 9},
		{"/api/put", "[]", 400, `{"error":{"code":400,"message":"No datapoints found in content"}}`, 9},
		{"/api/put", "[" + strings.Repeat(good+",", 60) + good + "]", 413, `{"error":{"code":413,"message":"Request body too large"`, 9},
		{"/api/query", good, 404, `{"error":{"code":404,"message":"Endpoint not found"`, 9},
	} {
		code, _, body := post(t, s, tc.path, tc.body)
		if code != tc.code || !strings.HasPrefix(body, tc.reply) {
			t.Errorf("%d %s %.60s: %d %s, want %d %s", i, tc.path, tc.body, code, body, tc.code, tc.reply)
		}
		f.WaitStored(t, tc.stored)
	}
	pts := f.Stored(t)
	if got := fmt.Sprint(pts[1]); got != fmt.Sprint(proto.Point{Endpoint: "e", Metric: "m", Tags: []proto.Tag{{Key: "host", Value: "h"}}, Value: 3.5, Timestamp: ts, Type: proto.Gauge, Step: 60}) {
		t.Fatalf("millisecond point with a numeric string: %s", got)
	}
	l := ingest.ListenerTSDBHTTP
	if v := f.Rejected(l, proto.ReasonNoMetric); v != 4 {
		t.Fatalf("empty metrics counted %v", v)
	}
	if v := f.Refused(l, ingest.RefusedTooLarge); v != 1 {
		t.Fatalf("too large counted %v", v)
	}
	if v := f.Refused(l, ingest.RefusedMalformed); v != 2 {
		t.Fatalf("malformed counted %v", v)
	}
	// Another method; the version; a gzip body as scollector sends it; a
	// body over the limit without Content-Length.
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/api/put", nil)
	if code, _, _ := do(t, req); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /api/put: %d", code)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/api/version", nil)
	if code, _, body := do(t, req); code != 200 || !strings.Contains(body, `"version":"kestrel-transfer `) {
		t.Fatalf("version: %d %s", code, body)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = io.WriteString(zw, "["+good+","+good+"]")
	_ = zw.Close()
	if code, _, body := post(t, s, "/api/put", zb.String(), "Content-Encoding", "gzip"); code != 204 {
		t.Fatalf("gzip: %d %s", code, body)
	}
	f.WaitStored(t, 11)
	req, _ = http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/put", io.MultiReader(strings.NewReader("["), strings.NewReader(strings.Repeat(good+",", 100))))
	if code, _, _ := do(t, req); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the limit: %d", code)
	}
	zb.Reset()
	zw = gzip.NewWriter(&zb)
	_, _ = io.WriteString(zw, "["+strings.Repeat(good+",", 100)+good+"]")
	_ = zw.Close()
	if code, _, _ := post(t, s, "/api/put", zb.String(), "Content-Encoding", "gzip"); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("gzip body over the limit once unzipped (%d bytes zipped): %d", zb.Len(), code)
	}
}

// Telnet and HTTP clients on the one port at once, each counted under its
// listener.
func TestOnePort(t *testing.T) {
	f := telnettest.New(t, nil)
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	ts := time.Now().Unix()
	c.Send(t, fmt.Sprintf("put m %d 1 host=telnet", ts))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := range 3 { // one kept-alive connection
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/api/put", strings.NewReader(dp("m", ts, i, `"host":"http"`)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	c.Send(t, fmt.Sprintf("put m %d 2 host=telnet", ts))
	f.WaitStored(t, 5)
	conns := f.Met.Connections
	wait.For(t, "one connection per listener", 5*time.Second, func() bool {
		return testutil.ToFloat64(conns.WithLabelValues(ingest.ListenerOpenTSDB)) == 1 &&
			testutil.ToFloat64(conns.WithLabelValues(ingest.ListenerTSDBHTTP)) == 1
	})
	if v := testutil.ToFloat64(f.Met.Requests.WithLabelValues(ingest.ListenerTSDBHTTP)); v != 3 {
		t.Fatalf("http requests %v", v)
	}
	client.CloseIdleConnections()
	wait.For(t, "the HTTP connection gone", 5*time.Second, func() bool {
		return testutil.ToFloat64(conns.WithLabelValues(ingest.ListenerTSDBHTTP)) == 0
	})
}

// When the stream cannot store (deleted, then NATS down), HTTP clients
// get 503 with Retry-After and telnet clients "put: retry", never a
// success.
func TestUnstored(t *testing.T) {
	f := telnettest.New(t, func(c *ingest.Config) { c.PublishTimeout = 300 * time.Millisecond })
	s := start(t, f)
	c := telnettest.Dial(t, s.Addr())
	ts := time.Now().Unix()
	f.DeleteStream(t)
	for _, down := range []bool{false, true} {
		if down {
			f.Srv.Shutdown()
		}
		for _, path := range []string{"/api/put", "/api/put?summary", "/api/put?details"} {
			code, retry, body := post(t, s, path, dp("m", ts, 1, `"host":"h"`))
			if code != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, "the ingest stream cannot store points now") {
				t.Fatalf("NATS down %v, %s: %d Retry-After %q %s", down, path, code, retry, body)
			}
		}
		c.Send(t, fmt.Sprintf("put m %d 1 host=h", ts))
		if got := c.Line(t); !strings.HasPrefix(got, "put: retry: 1 points not stored: the ingest stream cannot store points now") {
			t.Fatalf("NATS down %v, telnet: %q", down, got)
		}
	}
	if v := testutil.ToFloat64(f.Met.PointsStored); v != 0 {
		t.Fatalf("%v points counted stored", v)
	}
	if v := f.Refused(ingest.ListenerTSDBHTTP, ingest.RefusedUnavailable); v != 6 {
		t.Fatalf("http unavailable %v", v)
	}
}

// Bad connections are closed and counted; the others go on.
func TestBadConnections(t *testing.T) {
	f := telnettest.New(t, nil)
	f.Cfg.ReadTimeout = 300 * time.Millisecond
	s := start(t, f)
	other := telnettest.Dial(t, s.Addr())
	ts := time.Now().Unix()
	for i, tc := range []telnettest.BadConn{
		{Name: "too long", Send: strings.Repeat("x", 5000) + "\n", Reply: "error: line longer than 1024 bytes, closing\n", Reason: ingest.RefusedTooLarge},
		{Name: "binary", Send: "\x00\x01garbage\n", Reply: "error: binary data, closing\n", Reason: ingest.RefusedMalformed},
		{Name: "no newline", Send: "put m 1 1 host=h", Reply: "error: timeout, closing\n", Reason: ingest.RefusedTimeout},
	} {
		f.CheckBadConn(t, s.Addr(), ingest.ListenerOpenTSDB, tc)
		other.Send(t, fmt.Sprintf("put m %d %d host=h", ts, i))
		f.WaitStored(t, i+1)
	}
	// An HTTP client that never finishes its headers is cut after the
	// read timeout.
	slow := telnettest.Dial(t, s.Addr())
	_, _ = io.WriteString(slow, "POST /api/put HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	slow.Closed(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("slow headers cut after %s", d)
	}
	// A body that does not come in time is answered 408.
	slow = telnettest.Dial(t, s.Addr())
	_, _ = io.WriteString(slow, "POST /api/put HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{")
	if got := slow.Line(t); got != "HTTP/1.1 408 Request Timeout\r" {
		t.Fatalf("slow body: %q", got)
	}
	if v := f.Refused(ingest.ListenerTSDBHTTP, ingest.RefusedTimeout); v != 1 {
		t.Fatalf("slow body counted %v", v)
	}
	other.Send(t, fmt.Sprintf("put m %d 9 host=h", ts))
	f.WaitStored(t, 4)
}

// Close answers the requests in flight (here waiting for a NATS server
// that is gone): an HTTP client gets its 503, a telnet client its error
// line, and idle connections are closed.
func TestGracefulClose(t *testing.T) {
	f := telnettest.New(t, func(c *ingest.Config) { c.PublishTimeout = time.Second })
	s := start(t, f)
	idle := telnettest.Dial(t, s.Addr())
	tc := telnettest.Dial(t, s.Addr())
	ts := time.Now().Unix()
	f.Srv.Shutdown()
	type result struct {
		code int
		err  error
	}
	httpDone := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+s.Addr()+"/api/put", "application/json", strings.NewReader(dp("m", ts, 1, `"host":"h"`)))
		if err != nil {
			httpDone <- result{err: err}
			return
		}
		resp.Body.Close()
		httpDone <- result{code: resp.StatusCode}
	}()
	tc.Send(t, fmt.Sprintf("put m %d 1 host=h", ts))
	wait.For(t, "both requests read", 5*time.Second, func() bool {
		return testutil.ToFloat64(f.Met.PointsAccepted.WithLabelValues(ingest.ListenerOpenTSDB)) == 1 &&
			testutil.ToFloat64(f.Met.PointsAccepted.WithLabelValues(ingest.ListenerTSDBHTTP)) == 1
	})
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	if r := <-httpDone; r.err != nil || r.code != http.StatusServiceUnavailable {
		t.Fatalf("in-flight HTTP request: %d %v", r.code, r.err)
	}
	if got := tc.Closed(t); !strings.HasPrefix(got, "put: retry: 1 points not stored") {
		t.Fatalf("in-flight telnet line: %q", got)
	}
	if got := idle.Closed(t); got != "" {
		t.Fatalf("idle connection told %q", got)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

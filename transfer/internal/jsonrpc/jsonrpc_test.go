package jsonrpc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingesttest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The types of Open-Falcon's Transfer.Ping (common/model); those of
// Transfer.Update are ingesttest's.
type NullRpcRequest struct{}

type SimpleRpcResponse struct {
	Code int `json:"code"`
}

const listener = ingest.ListenerJSONRPC

type fixture struct {
	*ingesttest.Fixture
	srv *Server
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{Fixture: ingesttest.New(t, nil)}
	cfg := Config{MaxConns: 100, ReadTimeout: 5 * time.Second, IdleTimeout: time.Minute, MaxRequestBytes: 1 << 20}
	if mod != nil {
		mod(&cfg)
	}
	f.srv = New(cfg, f.Pub, f.Log)
	if err := f.srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.srv.Close(context.Background()) })
	return f
}

func (f *fixture) client(t *testing.T) *rpc.Client {
	t.Helper()
	c, err := jsonrpc.Dial("tcp", f.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) raw(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", f.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

var items = ingesttest.Items

// storedKeys counts the points in the stream by endpoint/tag.
func (f *fixture) storedKeys(t *testing.T) map[string]int {
	got := map[string]int{}
	for _, p := range f.Stored(t) {
		got[p.Key()]++
	}
	return got
}

// A Go net/rpc/jsonrpc client with Open-Falcon's types: Update is "ok"
// with Open-Falcon's counts once the points are in the stream; Ping;
// net/rpc's errors for unknown methods.
func TestGoClient(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)
	mvs := items("web01", 10)
	mvs = append(mvs,
		&ingesttest.MetricValue{Endpoint: "web01", Metric: "kernel.hostname", Value: 1, Step: 60, Type: "GAUGE"},
		&ingesttest.MetricValue{Endpoint: "web01", Metric: "m", Value: "abc", Step: 60, Type: "GAUGE"},
		&ingesttest.MetricValue{Endpoint: "web01", Metric: "m", Value: 1, Step: 60, Type: "gauge"},
		nil)
	var resp ingesttest.TransferResponse
	if err := c.Call("Transfer.Update", mvs, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Message != "ok" || resp.Total != 14 || resp.Invalid != 4 {
		t.Fatalf("reply %+v, want ok, Total 14, Invalid 4", resp)
	}
	got := f.storedKeys(t)
	if len(got) != 10 {
		t.Fatalf("%d points stored, want 10: %v", len(got), got)
	}
	for i := range 10 {
		if got[fmt.Sprintf("web01/cpu.idle/i=%d", i)] != 1 {
			t.Fatalf("point %d not stored once: %v", i, got)
		}
	}
	for r, n := range map[proto.Reason]float64{proto.ReasonHostname: 1, proto.ReasonBadValue: 1, proto.ReasonCounterType: 1, proto.ReasonNil: 1} {
		if v := f.Rejected(listener, r); v != n {
			t.Errorf("rejected %s = %v, want %v", r, v, n)
		}
	}
	if v := f.Accepted(listener); v != 10 {
		t.Errorf("accepted %v", v)
	}

	var pong SimpleRpcResponse
	if err := c.Call("Transfer.Ping", NullRpcRequest{}, &pong); err != nil || pong.Code != 0 {
		t.Fatalf("ping: %+v %v", pong, err)
	}
	resp = ingesttest.TransferResponse{}
	if err := c.Call("Transfer.Update", []*ingesttest.MetricValue{}, &resp); err != nil || resp.Message != "ok" || resp.Total != 0 {
		t.Fatalf("empty update: %+v %v", resp, err)
	}
	for method, want := range map[string]string{"Transfer.Nope": "rpc: can't find method Transfer.Nope",
		"Judge.Send": "rpc: can't find service Judge.Send", "Update": "rpc: service/method request ill-formed: Update"} {
		if err := c.Call(method, mvs, &resp); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", method, err, want)
		}
	}
	// The connection is still good after errors.
	if err := c.Call("Transfer.Update", items("web02", 3), &resp); err != nil || resp.Total != 3 || resp.Invalid != 0 {
		t.Fatalf("after errors: %+v %v", resp, err)
	}
}

// Many concurrent callers on shared clients (net/rpc pipelines them on
// each connection): every call answered ok, every point stored once.
func TestConcurrentClients(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxInFlight = 4 })
	clients := []*rpc.Client{f.client(t), f.client(t), f.client(t)}
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Go(func() {
			var resp ingesttest.TransferResponse
			err := clients[i%3].Call("Transfer.Update", items(fmt.Sprintf("h%d", i), 5), &resp)
			if err == nil && (resp.Message != "ok" || resp.Total != 5 || resp.Invalid != 0) {
				err = fmt.Errorf("reply %+v", resp)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := f.storedKeys(t)
	if len(got) != 1500 {
		t.Fatalf("%d distinct points stored, want 1500", len(got))
	}
	for k, n := range got {
		if n != 1 {
			t.Fatalf("%s stored %d times", k, n)
		}
	}
}

func request(id, method string, mvs []*ingesttest.MetricValue) string {
	b, _ := json.Marshal(mvs)
	s := `{"method":"` + method + `","params":[` + string(b) + `]`
	if id != "" {
		s += `,"id":` + id
	}
	return s + "}"
}

func readReply(t *testing.T, r *bufio.Reader) map[string]json.RawMessage {
	t.Helper()
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading a reply: %v (got %q)", err, line)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("reply %q: %v", line, err)
	}
	return m
}

// Requests written back to back in one write, ids of every JSON kind:
// each gets its reply, in order, with its id as sent.
func TestPipelinedRaw(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxInFlight = 3 })
	conn, r := f.raw(t)
	ids := []string{"0", "1", `"abc"`, `{"x":[1,2]}`, "null", "", "-7.5e3", `"\u00e9"`, "[]", "true"}
	var b strings.Builder
	for i, id := range ids {
		b.WriteString(request(id, "Transfer.Update", items(fmt.Sprintf("p%d", i), 20)))
		b.WriteString("\n")
	}
	b.WriteString(`{"method":"Transfer.Ping","params":[{}],"id":99}`)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		m := readReply(t, r)
		want := id
		if id == "" {
			want = "null"
		}
		if string(m["id"]) != want || string(m["error"]) != "null" {
			t.Fatalf("reply %s, want id %s and no error", m, want)
		}
		var resp ingesttest.TransferResponse
		if err := json.Unmarshal(m["result"], &resp); err != nil || resp.Message != "ok" || resp.Total != 20 {
			t.Fatalf("result %s", m["result"])
		}
	}
	if m := readReply(t, r); string(m["id"]) != "99" || string(m["result"]) != `{"code":0}` {
		t.Fatalf("ping reply %s", m)
	}
	f.WantStored(t, 200)
}

// A request that arrives in pieces, cut anywhere (inside a string, an
// escape, a number), and one of several hundred kilobytes: each framed
// across reads and answered.
func TestRequestInPieces(t *testing.T) {
	f := newFixture(t, nil)
	conn, r := f.raw(t)
	mvs := items("pieces", 2)
	mvs[0].Metric, mvs[1].Tags = `quote"and\backslash`, `path=C:\dir,é=\u00e9`
	req := request("1", "Transfer.Update", mvs)
	for cut := 1; cut < len(req); cut++ {
		io.WriteString(conn, req[:cut])
		time.Sleep(time.Millisecond)
		io.WriteString(conn, req[cut:])
		if m := readReply(t, r); !strings.Contains(string(m["result"]), `"Total":2,"Invalid":0`) {
			t.Fatalf("cut at %d (%q): reply %s", cut, req[:cut], m)
		}
	}
	var resp ingesttest.TransferResponse
	if err := f.client(t).Call("Transfer.Update", items("large", 5000), &resp); err != nil || resp.Total != 5000 || resp.Invalid != 0 {
		t.Fatalf("large request: %+v %v", resp, err)
	}
	got := f.storedKeys(t)
	first := "pieces/" + mvs[0].Metric + "/i=0"
	if got[first] != len(req)-1 || len(got) != 2+5000 {
		t.Fatalf("%d distinct points stored; %s %d times, want %d", len(got), first, got[first], len(req)-1)
	}
}

// Bad params get an error reply and the connection goes on (as net/rpc
// does); what is not a request gets an error with id null and the
// connection is closed.
func TestBadRequests(t *testing.T) {
	f := newFixture(t, nil)
	conn, r := f.raw(t)
	for req, want := range map[string]string{
		`{"method":"Transfer.Update","id":1}`:                        errMissingParams,
		`{"method":"Transfer.Update","params":null,"id":1}`:          errMissingParams,
		`{"method":"Transfer.Update","params":{},"id":1}`:            "json: cannot unmarshal object into Go value of type [1]interface {}",
		`{"method":"Transfer.Update","params":[{"a":1}],"id":1}`:     "json: cannot unmarshal object into Go value of type []*model.MetricValue",
		`{"method":"Transfer.Ping","params":[[1]],"id":1}`:           "json: cannot unmarshal array into Go value of type model.NullRpcRequest",
		`{"method":"Transfer.Ping","id":1}`:                          errMissingParams,
		`{"method":null,"params":[],"id":1}`:                         "rpc: service/method request ill-formed: ",
		`{"METHOD":"Transfer.Nope","params":[],"id":1,"id":2}`:       "rpc: can't find method Transfer.Nope",
		`{"method":"Transfer.Update","params":[[1,null,{}]],"id":1}`: "",
	} {
		fmt.Fprintln(conn, req)
		m := readReply(t, r)
		if want == "" {
			if !strings.Contains(string(m["result"]), `"Message":"ok","Total":3,"Invalid":3,`) {
				t.Errorf("%s: reply %s", req, m)
			}
			continue
		}
		var got string
		if err := json.Unmarshal(m["error"], &got); err != nil || got != want || string(m["result"]) != "null" {
			t.Errorf("%s: reply %s, want error %q", req, m, want)
		}
	}
	if f.Refused(listener, ingest.RefusedMalformed) != 0 {
		t.Fatal("a request with bad params counted malformed")
	}
	for i, bad := range []string{`{"method":"Transfer.Update","params":[[]] "id":1}`, `{"method":1,"params":[[]]}`, `[1,2]`,
		"\x00\x01\x02\xff garbage", `{"a":1,}`, "{\"method\":\"Transfer.Update\",\"params\":[[{\"metric\":\"a\x01\"}]]}"} {
		conn, r := f.raw(t)
		fmt.Fprintln(conn, bad)
		m := readReply(t, r)
		var got string
		if json.Unmarshal(m["error"], &got) != nil || string(m["id"]) != "null" || !strings.HasPrefix(got, "malformed request") {
			t.Errorf("%q: reply %s", bad, m)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Errorf("%q: connection not closed: %v", bad, err)
		}
		if v := f.Refused(listener, ingest.RefusedMalformed); v != float64(i+1) {
			t.Errorf("%q: malformed counted %v times in all", bad, v)
		}
	}
	if v := testutil.ToFloat64(f.Met.Requests.WithLabelValues(listener)); v != 15 {
		t.Errorf("%v requests counted, want 15", v)
	}
}

// A request cut short by the client closing is answered as such and
// counted; the server goes on serving others.
func TestTruncated(t *testing.T) {
	f := newFixture(t, nil)
	conn, r := f.raw(t)
	req := request("5", "Transfer.Update", items("t", 50))
	io.WriteString(conn, req[:len(req)/2])
	conn.(*net.TCPConn).CloseWrite()
	m := readReply(t, r)
	if !strings.Contains(string(m["error"]), "cut short") || string(m["id"]) != "null" {
		t.Fatalf("reply %s", m)
	}
	wait.For(t, "truncated request counted", 5*time.Second, func() bool { return f.Refused(listener, ingest.RefusedMalformed) == 1 })
	f.WantStored(t, 0)
	var resp ingesttest.TransferResponse
	if err := f.client(t).Call("Transfer.Update", items("after", 2), &resp); err != nil || resp.Total != 2 {
		t.Fatalf("next client: %+v %v", resp, err)
	}
}

// A request over max_request_bytes: error reply, connection closed,
// counted; the memory held stays bounded by the limit.
func TestTooLarge(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxRequestBytes = 8 << 10 })
	var resp ingesttest.TransferResponse
	c := f.client(t)
	if err := c.Call("Transfer.Update", items("small", 20), &resp); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
	if err := c.Call("Transfer.Update", items("big", 200), &resp); err == nil {
		t.Fatalf("a request over the limit answered %+v", resp)
	}
	// Just over the limit, in one write that the buffer can hold whole.
	conn, r := f.raw(t)
	req := strings.TrimSuffix(request("1", "Transfer.Update", items("over", 60)), "}")
	req += strings.Repeat(" ", 8<<10-len(req)) + "}"
	if len(req) != 8<<10+1 {
		t.Fatalf("request of %d bytes", len(req))
	}
	io.WriteString(conn, req)
	if m := readReply(t, r); !strings.Contains(string(m["error"]), "max_request_bytes") {
		t.Fatalf("%d bytes: reply %s", len(req), m)
	}
	conn, r = f.raw(t)
	go func() { // a request that never ends
		chunk := []byte(`{"method":"Transfer.Update","params":[[` + strings.Repeat(`{"endpoint":"x"},`, 1000))
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
			chunk = []byte(strings.Repeat(`{"endpoint":"x"},`, 1000))
		}
	}()
	m := readReply(t, r)
	if !strings.Contains(string(m["error"]), "max_request_bytes") {
		t.Fatalf("reply %s", m)
	}
	f.WantRefused(t, listener, ingest.RefusedTooLarge, 3)
	f.WantStored(t, 20)
}

// Slowloris: a request trickled slower than read_timeout is cut off;
// an idle connection is closed after idle_timeout; both counted.
func TestTimeouts(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReadTimeout, c.IdleTimeout = 300*time.Millisecond, 500*time.Millisecond })
	conn, r := f.raw(t)
	req := request("1", "Transfer.Update", items("slow", 3))
	start := time.Now()
	go func() {
		for i := range len(req) {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	m := readReply(t, r)
	if !strings.Contains(string(m["error"]), "read_timeout") {
		t.Fatalf("reply %s", m)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow request cut after %s", d)
	}
	_, idle := f.raw(t)
	if _, err := idle.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want closed", err)
	}
	f.WantRefused(t, listener, ingest.RefusedTimeout, 2)
	f.WantStored(t, 0)
}

// The stream cannot store: the client gets an error, never "ok"; what
// got "ok" before is in the stream.
func TestUnavailableIsNeverOK(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)
	var resp ingesttest.TransferResponse
	if err := c.Call("Transfer.Update", items("before", 5), &resp); err != nil || resp.Message != "ok" {
		t.Fatalf("before: %+v %v", resp, err)
	}
	f.WantStored(t, 5)
	if err := f.JS.DeleteStream(context.Background(), f.Subj.Stream()); err != nil {
		t.Fatal(err)
	}
	resp = ingesttest.TransferResponse{}
	err := c.Call("Transfer.Update", items("deleted", 5), &resp)
	if err == nil || !strings.Contains(err.Error(), "points not stored") || resp.Message == "ok" {
		t.Fatalf("stream deleted: %+v %v, want an error", resp, err)
	}
	f.Srv.Shutdown()
	if err := c.Call("Transfer.Update", items("down", 5), &resp); err == nil {
		t.Fatalf("nats down: %+v, want an error", resp)
	}
	f.WantRefused(t, listener, ingest.RefusedUnavailable, 2)
}

// Close answers the request being published, then closes; new
// connections are refused.
func TestClose(t *testing.T) {
	f := newFixture(t, nil)
	c := f.client(t)
	idle := f.client(t)
	var pong SimpleRpcResponse
	if err := idle.Call("Transfer.Ping", NullRpcRequest{}, &pong); err != nil {
		t.Fatal(err)
	}
	f.Srv.Shutdown() // the publish of the next request waits for its timeout
	call := c.Go("Transfer.Update", items("x", 3), &ingesttest.TransferResponse{}, nil)
	time.Sleep(100 * time.Millisecond)
	if err := f.srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-call.Done
	if call.Error == nil || call.Error == rpc.ErrShutdown || strings.Contains(call.Error.Error(), "EOF") {
		t.Fatalf("in-flight request: %v, want its error reply", call.Error)
	}
	if err := idle.Call("Transfer.Ping", NullRpcRequest{}, &pong); err == nil {
		t.Fatal("idle connection still served after Close")
	}
}

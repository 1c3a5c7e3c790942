// Package telnettest is what the tests of the line listeners (packages
// telnet and opentsdb) share beyond ingesttest: their ingest config, a
// line client, and the property every line parser is fuzzed for.
package telnettest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingesttest"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
)

// Fixture is ingesttest's JetStream and Publisher, and the ingest config
// of the listeners under test (addresses 127.0.0.1:0, lines up to 1024
// bytes, requests up to 1 MiB, short timeouts).
type Fixture struct {
	*ingesttest.Fixture
	Cfg config.Ingest
}

// New starts NATS with the ingest stream and a Publisher (stopped on
// cleanup); mod changes the Publisher's config.
func New(t *testing.T, mod func(*ingest.Config)) *Fixture {
	t.Helper()
	in := config.Default().Ingest
	in.Telnet.Enabled, in.Telnet.Listen = true, "127.0.0.1:0"
	in.OpenTSDB.Enabled, in.OpenTSDB.Listen = true, "127.0.0.1:0"
	in.ReadTimeout, in.IdleTimeout = 2*time.Second, 10*time.Second
	in.MaxLineBytes = 1024
	in.MaxRequestBytes = 1 << 20
	return &Fixture{Fixture: ingesttest.New(t, mod), Cfg: in}
}

// WaitStored waits until n points are in the stream and returns them.
func (f *Fixture) WaitStored(t testing.TB, n int) []proto.Point {
	t.Helper()
	var pts []proto.Point
	wait.For(t, "points stored", 10*time.Second, func() bool {
		pts = f.Stored(t)
		return len(pts) >= n
	})
	if len(pts) != n {
		t.Fatalf("%d points stored, want %d: %+v", len(pts), n, pts)
	}
	return pts
}

// DeleteStream deletes the ingest stream: every publish fails from then
// on.
func (f *Fixture) DeleteStream(t testing.TB) {
	t.Helper()
	if err := f.JS.DeleteStream(context.Background(), f.Subj.Stream()); err != nil {
		t.Fatal(err)
	}
}

// BadLine is a line a listener answers with an error line and counts:
// rejected for Reason, or refused malformed when Reason is OK.
type BadLine struct {
	Line, Reply string // the answer starts with Reply
	Reason      proto.Reason
}

// CheckBadLines sends each line on c and checks its answer and that it is
// counted once for listener.
func (f *Fixture) CheckBadLines(t *testing.T, c *Client, listener string, lines []BadLine) {
	t.Helper()
	count := func(r proto.Reason) float64 {
		if r == proto.OK {
			return f.Refused(listener, ingest.RefusedMalformed)
		}
		return f.Rejected(listener, r)
	}
	for _, tc := range lines {
		before := count(tc.Reason)
		c.Send(t, tc.Line)
		if got := c.Line(t); !strings.HasPrefix(got, tc.Reply) {
			t.Errorf("%q: answered %q, want %q", tc.Line, got, tc.Reply)
		}
		if n := count(tc.Reason) - before; n != 1 {
			t.Errorf("%q: counted %v times", tc.Line, n)
		}
	}
}

// BadConn is what a client sends that makes a listener answer Reply and
// close the connection, counted refused for Reason.
type BadConn struct {
	Name, Send, Reply, Reason string
}

// CheckBadConn sends tc on a new connection to addr and checks the
// answer, the close and the count for listener.
func (f *Fixture) CheckBadConn(t *testing.T, addr, listener string, tc BadConn) {
	t.Helper()
	before := f.Refused(listener, tc.Reason)
	c := Dial(t, addr)
	if _, err := io.WriteString(c, tc.Send); err != nil {
		t.Fatal(err)
	}
	if got := c.Closed(t); got != tc.Reply {
		t.Errorf("%s: answered %q, want %q", tc.Name, got, tc.Reply)
	}
	if n := f.Refused(listener, tc.Reason) - before; n != 1 {
		t.Errorf("%s: refused %s %v times", tc.Name, tc.Reason, n)
	}
}

// Client is a line client of a listener.
type Client struct {
	net.Conn
	R *bufio.Reader
}

// Dial connects to addr; the connection is closed on cleanup.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{Conn: c, R: bufio.NewReader(c)}
}

// Send writes lines, each followed by "\n".
func (c *Client) Send(t testing.TB, lines ...string) {
	t.Helper()
	if _, err := io.WriteString(c, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
}

// Line reads one reply line (without "\n"), waiting at most 10 s.
func (c *Client) Line(t testing.TB) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.R.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a reply: %v (read %q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// Closed waits until the server closes the connection and returns what
// it sent before.
func (c *Client) Closed(t testing.TB) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.R)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection not closed by the server (read %q)", b)
	}
	return string(b)
}

// Listener is a started listener.
type Listener interface {
	Addr() string
	Close(ctx context.Context) error
}

// Start starts a listener with f's config and Publisher; it is closed on
// cleanup.
func Start[L Listener](t *testing.T, f *Fixture, start func(config.Ingest, *ingest.Publisher, *slog.Logger) (L, error)) L {
	t.Helper()
	l, err := start(f.Cfg, f.Pub, f.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l
}

// FuzzNow is the wall time of Fuzz (unix seconds).
const FuzzNow = 1700000000

// FuzzProtocol fuzzes p as a session reads lines (see Fuzz), with lines
// of at most 256 bytes and batches of at most 7 points.
func FuzzProtocol(f *testing.F, p telnet.Protocol, seeds ...string) {
	x := telnet.Offline{Protocol: p, MaxLine: 256, MaxBatch: 7}
	Fuzz(f, func(data []byte, publish func([]proto.Point)) []byte {
		_ = x.Run(bytes.NewReader(data), FuzzNow, publish)
		return x.Out
	}, seeds...)
}

// Fuzz feeds arbitrary bytes to run, which parses them as a listener
// does and publishes batches of points and returns what the client was
// told: it must never panic, every point it publishes must be valid at
// FuzzNow and survive the batch codec unchanged, and every reply must end
// with a newline.
func Fuzz(f *testing.F, run func(data []byte, publish func([]proto.Point)) (replies []byte), seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		publish := func(pts []proto.Point) {
			for i := range pts {
				q := pts[i]
				if r := proto.ValidatePoint(&q, FuzzNow); r != proto.OK {
					t.Fatalf("published an invalid point (%s): %+v", r, pts[i])
				}
			}
			if len(pts) == 0 {
				return
			}
			back, err := proto.DecodeBatch(proto.EncodeBatch(pts))
			if err != nil || fmt.Sprint(back) != fmt.Sprint(pts) {
				t.Fatalf("codec round trip: %v\n%+v\n%+v", err, pts, back)
			}
		}
		out := run(data, publish)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("a reply without its newline: %q", out)
		}
	})
}

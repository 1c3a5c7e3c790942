package natsconn

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
)

// unreachableLogEvery: after the first "cannot reach NATS" of an outage
// (logged at once), at most one line per URL per interval.
const unreachableLogEvery = time.Minute

// dialer is the connection's nats.CustomDialer. It ties connecting to the
// context given to Connect: once that is done no dial starts, a dial or
// DNS lookup in progress returns, and a connection still in its NATS
// handshake is closed, so nats.go, which holds its lock while it dials
// and waits for the server's INFO, lets go within moments instead of
// after connect_timeout. It logs every failed dial naming the URL.
type dialer struct {
	ctx     context.Context
	timeout time.Duration
	log     *slog.Logger
	urls    map[string]string // "host:port" as nats.go dials it → the URL for logs (redacted)

	limiter atomic.Pointer[ratelog.Limiter] // a fresh one per outage

	mu          sync.Mutex
	handshaking map[*handshakeConn]struct{}
	stopWatch   func() bool
}

func newDialer(ctx context.Context, c Config, log *slog.Logger) *dialer {
	d := &dialer{ctx: ctx, timeout: c.ConnectTimeout, log: log, urls: map[string]string{},
		handshaking: map[*handshakeConn]struct{}{}}
	for _, entry := range c.URLs {
		for part := range strings.SplitSeq(entry, ",") {
			part = strings.TrimSpace(part)
			if addr, ok := dialAddress(part); ok && part != "" {
				d.urls[addr] = Redact(part)
			}
		}
	}
	d.connected()
	d.stopWatch = context.AfterFunc(ctx, d.abandonHandshakes)
	return d
}

// dialAddress is the host:port nats.go dials for u (default ports
// added as nats.go adds them).
func dialAddress(s string) (string, bool) {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "ws":
			port = "80"
		case "wss":
			port = "443"
		default:
			port = "4222"
		}
	}
	return net.JoinHostPort(u.Hostname(), port), true
}

// connected starts a new outage count: the next failure is logged at once.
func (d *dialer) connected() { d.limiter.Store(ratelog.New(unreachableLogEvery)) }

// stop releases the context watch (the connection is closed).
func (d *dialer) stop() { d.stopWatch() }

// dialError is a failed dial, already logged by the dialer.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// Dial resolves host (nats.go's own lookup is off: it ignores contexts),
// tries its addresses in random order as nats.go does, and returns the
// connection wrapped so that the end of the handshake is seen.
func (d *dialer) Dial(network, address string) (net.Conn, error) {
	if err := d.ctx.Err(); err != nil {
		return nil, &dialError{err}
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &dialError{err}
	}
	hosts := []string{host}
	if net.ParseIP(host) == nil {
		if hosts, err = net.DefaultResolver.LookupHost(d.ctx, host); err != nil {
			return nil, d.failed(address, err)
		}
		rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	}
	nd := net.Dialer{Timeout: d.timeout / time.Duration(len(hosts))}
	for _, h := range hosts {
		var c net.Conn
		if c, err = nd.DialContext(d.ctx, network, net.JoinHostPort(h, port)); err == nil {
			return d.track(c)
		}
	}
	return nil, d.failed(address, err)
}

// failed logs a failed dial (not one cut short by the context) and
// returns it as a dialError.
func (d *dialer) failed(address string, err error) error {
	if d.ctx.Err() != nil {
		return &dialError{d.ctx.Err()}
	}
	u, ok := d.urls[address]
	if !ok {
		u = address // a server the cluster told us about
	}
	if ok, suppressed := d.limiter.Load().Allow(address); ok {
		d.log.Warn("cannot reach NATS at "+u, "err", err, "suppressed", suppressed)
	}
	return &dialError{err}
}

// track registers a dialed connection as in its handshake.
func (d *dialer) track(c net.Conn) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ctx.Err(); err != nil { // done while dialing
		_ = c.Close()
		return nil, &dialError{err}
	}
	hc := &handshakeConn{Conn: c, d: d}
	d.handshaking[hc] = struct{}{}
	return hc, nil
}

func (d *dialer) handshakeOver(hc *handshakeConn) {
	d.mu.Lock()
	delete(d.handshaking, hc)
	d.mu.Unlock()
}

// abandonHandshakes closes the connections still in their handshake when
// the context is done.
func (d *dialer) abandonHandshakes() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for hc := range d.handshaking {
		_ = hc.Conn.Close()
		delete(d.handshaking, hc)
	}
}

// handshakeConn is a dialed connection; nats.go clears its deadline
// (SetDeadline with the zero time) when the handshake is over, succeeded
// or not.
type handshakeConn struct {
	net.Conn
	d *dialer
}

func (c *handshakeConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		c.d.handshakeOver(c)
	}
	return c.Conn.SetDeadline(t)
}

func (c *handshakeConn) Close() error {
	c.d.handshakeOver(c)
	return c.Conn.Close()
}

// reconnectDelay is the pause after the n-th pass over every URL failed:
// first, doubling up to max, plus up to a quarter more at random so that
// a fleet does not retry in step.
func reconnectDelay(n int, first, most time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	d = min(d, most)
	return d + rand.N(d/4+1)
}

// isDialError reports whether err is a failed dial (logged already).
func isDialError(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

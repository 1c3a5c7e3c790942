// Package natsconn is the one NATS connection of every Kestrel binary:
// the `nats:` config block (Config, TLS), validated at load; Connect,
// which reconnects for ever with backoff, logs what happens to the
// connection and counts asynchronous errors (Metrics); WaitConnected and
// Drain for start-up and the ordered shutdown.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/nats-io/nats.go"
)

// Reconnect backoff defaults (Options.ReconnectWait, MaxReconnectWait).
const (
	DefaultReconnectWait    = time.Second
	DefaultMaxReconnectWait = 15 * time.Second
)

// asyncErrorLogEvery limits the log lines of asynchronous errors, per kind.
const asyncErrorLogEvery = 10 * time.Second

// Options are what the binaries sharing Connect do differently.
type Options struct {
	// Name is the client name the server shows ("kestrel-agent web01").
	Name string
	// Log receives the connection's log lines (nil: slog.Default()).
	Log *slog.Logger
	// Metrics counts asynchronous errors (nil: not counted).
	Metrics *Metrics
	// ReconnectWait is the pause after every URL failed once; it doubles
	// after each further failed pass up to MaxReconnectWait, and starts
	// again after a connection. Zero: the defaults. (nats.ReconnectWait
	// in Extra has no effect.)
	ReconnectWait, MaxReconnectWait time.Duration
	// OnConnect, when not nil, runs after every connection (the first,
	// also one made in the background, and every reconnect) is logged.
	OnConnect func(*nats.Conn)
	// OnDisconnect, when not nil, runs after a disconnect is logged; err
	// is nil for a Close or Drain (the judge stops serving on a lost
	// connection).
	OnDisconnect func(*nats.Conn, error)
	// Extra options are applied last, e.g. nats.ReconnectBufSize(-1).
	Extra []nats.Option
}

// Connect connects to the servers of c and returns the connection, which
// reconnects for ever. When no server can be reached it still returns a
// connection (nats.RetryOnFailedConnect) that keeps trying in the
// background; the first failed attempt of every outage is logged at once
// ("cannot reach NATS at <url>").
//
// ctx bounds connecting, not the connection: once ctx is done no attempt
// starts and one in progress is abandoned, so a binary told to stop while
// NATS is unreachable stops at once. If ctx is done before a first
// connection, Connect closes it and returns ctx's error. An established
// connection stays until Drain or Close; when it is lost after ctx is
// done it is not re-established.
func Connect(ctx context.Context, c Config, o Options) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cannot connect to nats: %w", err)
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	d := newDialer(ctx, c, log)
	opts, err := options(c, o, log, d)
	if err != nil {
		d.stop()
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(c.URLs, ","), opts...)
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("cannot connect to nats %s: %w", Redact(strings.Join(c.URLs, ",")), err)
	}
	if ctx.Err() != nil && !nc.IsConnected() {
		nc.Close()
		return nil, fmt.Errorf("cannot connect to nats: %w", ctx.Err())
	}
	return nc, nil
}

// options builds the nats.go options: credentials, TLS, endless
// reconnects with backoff, and the handlers that log and count.
func options(c Config, o Options, log *slog.Logger, d *dialer) ([]nats.Option, error) {
	first, most := o.ReconnectWait, o.MaxReconnectWait
	if first <= 0 {
		first = DefaultReconnectWait
	}
	if most <= 0 {
		most = DefaultMaxReconnectWait
	}
	most = max(most, first)
	asyncLog := ratelog.New(asyncErrorLogEvery)
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(c.ConnectTimeout),
		nats.SkipHostLookup(), // the dialer looks up, under ctx
		nats.SetCustomDialer(d),
		nats.CustomReconnectDelay(func(n int) time.Duration { return reconnectDelay(n, first, most) }),
		nats.ConnectHandler(func(nc *nats.Conn) {
			d.connected()
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
			if o.OnConnect != nil {
				o.OnConnect(nc)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			d.connected()
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
			if o.OnConnect != nil {
				o.OnConnect(nc)
			}
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil { // Close or Drain
				log.Info("nats disconnected")
			} else {
				log.Warn("nats disconnected", "err", err)
			}
			if o.OnDisconnect != nil {
				o.OnDisconnect(nc, err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			// Failed dials are logged by the dialer with their URL; the
			// initial pass reports them as ErrNoServers.
			if isDialError(err) || errors.Is(err, nats.ErrNoServers) {
				return
			}
			if ok, suppressed := asyncLog.Allow("connect"); ok {
				log.Warn("cannot connect to NATS", "err", err, "suppressed", suppressed)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			d.stop()
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			kind := KindOf(err)
			o.Metrics.asyncError(kind)
			if ok, suppressed := asyncLog.Allow(kind.String()); ok {
				subj, dropped := "", 0
				if sub != nil {
					subj = sub.Subject
					dropped, _ = sub.Dropped()
				}
				log.Warn("nats async error", "kind", kind.String(), "subject", subj, "dropped", dropped, "err", err, "suppressed", suppressed)
			}
		}),
	}
	auth, err := c.authOption()
	if err != nil {
		return nil, err
	}
	if auth != nil {
		opts = append(opts, auth)
	}
	tc, err := c.TLS.Config("nats.tls")
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	return append(opts, o.Extra...), nil
}

// authOption is the credentials option of c (nil: none).
func (c *Config) authOption() (nats.Option, error) {
	switch {
	case c.User != "":
		return nats.UserInfo(c.User, c.Password), nil
	case c.Token != "":
		return nats.Token(c.Token), nil
	case c.NkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_seed_file: %w", err)
		}
		return o, nil
	case c.CredsFile != "":
		if _, err := os.Stat(c.CredsFile); err != nil {
			return nil, fmt.Errorf("nats.creds_file: %w", err)
		}
		return nats.UserCredentials(c.CredsFile), nil
	}
	return nil, nil
}

// WaitConnected waits until nc is connected. It returns ctx's error when
// ctx is done first and nats.ErrConnectionClosed when nc is closed.
func WaitConnected(ctx context.Context, nc *nats.Conn) error {
	ch := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(ch)
	for {
		switch nc.Status() {
		case nats.CONNECTED:
			return nil
		case nats.CLOSED:
			return nats.ErrConnectionClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Drain drains nc (subscriptions, then what is buffered to publish) and
// waits until it is closed and its close logged, or until ctx is done,
// then closes it. It returns nil when nc was drained or already closed,
// nats.ErrConnectionReconnecting when nc was not connected (it is closed
// without draining), or an error saying the drain did not finish in time.
func Drain(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	logClose := nc.ClosedHandler()
	nc.SetClosedHandler(func(c *nats.Conn) {
		if logClose != nil {
			logClose(c)
		}
		close(closed)
	})
	err := nc.Drain()
	switch {
	case errors.Is(err, nats.ErrConnectionClosed):
		return nil
	case err != nil && !errors.Is(err, nats.ErrConnectionReconnecting):
		nc.Close()
	}
	select {
	case <-closed:
	case <-ctx.Done():
		nc.Close()
		if err == nil {
			err = fmt.Errorf("nats drain not done, closed: %w", ctx.Err())
		}
	}
	return err
}

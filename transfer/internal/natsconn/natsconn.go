// Package natsconn opens the transfer's NATS connection from the shared
// nats config block.
package natsconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go"
)

// AsyncErrorKind names an asynchronous NATS error for the metric label:
// "slow_consumer" (the client dropped messages of a subscription whose
// pending limit was reached: fetched ingest messages are redelivered after
// ack_wait, dropped judge replies end in a retried request) or "other".
func AsyncErrorKind(err error) string {
	if errors.Is(err, nats.ErrSlowConsumer) {
		return "slow_consumer"
	}
	return "other"
}

// Options returns the connection options for c: reconnect forever, start
// even when NATS is not up yet, log connection changes. onAsyncError, when
// not nil, is called with the kind of every asynchronous error (it counts
// them); the log line is rate-limited per kind.
func Options(c config.NATS, name string, log *slog.Logger, onAsyncError func(kind string)) ([]nats.Option, error) {
	rl := ratelog.New(10 * time.Second)
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(c.ConnectTimeout),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("nats connected", "url", nc.ConnectedUrlRedacted()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			kind := AsyncErrorKind(err)
			if onAsyncError != nil {
				onAsyncError(kind)
			}
			if suppressed, ok := rl.Allow(kind); ok {
				subj, dropped := "", 0
				if sub != nil {
					subj = sub.Subject
					dropped, _ = sub.Dropped()
				}
				log.Warn("nats async error", "kind", kind, "subject", subj, "dropped", dropped, "err", err, "suppressed", suppressed)
			}
		}),
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load nkey seed %s: %w", c.NkeySeedFile, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLS.Enabled() {
		tc := &tls.Config{ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("cannot read nats.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("nats.tls.ca_file %s: no certificates found", c.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		if c.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("cannot load nats.tls client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// Connect connects to the configured servers (see Options).
func Connect(c config.NATS, name string, log *slog.Logger, onAsyncError func(kind string)) (*nats.Conn, error) {
	opts, err := Options(c, name, log, onAsyncError)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(c.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to nats %s: %w", strings.Join(c.URLs, ","), err)
	}
	return nc, nil
}

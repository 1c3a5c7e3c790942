package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/falconhttp"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/jsonrpc"
	"github.com/kestrel-mon/kestrel/transfer/internal/opentsdb"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
)

// listener is a running client listener.
type listener interface {
	Close(ctx context.Context) error
}

// ingestEnabled reports whether any client listener is enabled.
func ingestEnabled(c config.Ingest) bool {
	return c.JSONRPC.Enabled || c.HTTPPush.Enabled || c.Telnet.Enabled || c.OpenTSDB.Enabled
}

// ingestSource is the subject token the listeners publish under.
func ingestSource(c config.Ingest) string {
	if c.Source != "" {
		return c.Source
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return proto.SubjectToken("transfer_" + host)
}

// newPublisher builds the publisher the listeners share.
func (a *App) newPublisher() *ingest.Publisher {
	in := a.cfg.Ingest
	src := ingestSource(in)
	var id [6]byte
	_, _ = rand.Read(id[:])
	maxBytes := 512 << 10
	if mp := int(a.nc.MaxPayload()); mp > 0 {
		maxBytes = mp * 3 / 4
	}
	return ingest.NewPublisher(ingest.Config{
		Subject: a.subj.Ingest(src), Stream: a.subj.Stream(), MsgIDPrefix: src + "-" + hex.EncodeToString(id[:]),
		BatchPoints: in.BatchPoints, MaxBatchBytes: maxBytes, Linger: in.Linger, PublishTimeout: in.PublishTimeout,
		Workers: in.Workers, MaxPendingPoints: in.MaxPendingPoints, MaxWait: in.MaxWait,
	}, a.js, ingest.NewMetrics(a.reg), a.log)
}

// stopIngest closes the listeners (in-flight requests answered), then the
// publisher (what is batched is published).
func (a *App) stopIngest(ctx context.Context) error {
	var errs []error
	for _, l := range a.listeners {
		errs = append(errs, l.Close(ctx))
	}
	if a.pub != nil {
		errs = append(errs, a.pub.Stop(ctx))
	}
	return errors.Join(errs...)
}

// startListeners starts the enabled client listeners and returns the HTTP
// handler with /api/push mounted when enabled.
func (a *App) startListeners(h http.Handler) (http.Handler, error) {
	in := a.cfg.Ingest
	if in.JSONRPC.Enabled {
		rpc := jsonrpc.New(jsonrpc.Config{MaxConns: in.MaxConnections, ReadTimeout: in.ReadTimeout,
			IdleTimeout: in.IdleTimeout, MaxRequestBytes: in.MaxRequestBytes}, a.pub, a.log)
		if err := rpc.Listen(in.JSONRPC.Listen); err != nil {
			return nil, err
		}
		a.listeners = append(a.listeners, rpc)
	}
	if in.Telnet.Enabled {
		s, err := telnet.Start(in, a.pub, a.log)
		if err != nil {
			return nil, err
		}
		a.listeners = append(a.listeners, s)
	}
	if in.OpenTSDB.Enabled {
		s, err := opentsdb.Start(in, a.pub, a.log)
		if err != nil {
			return nil, err
		}
		a.listeners = append(a.listeners, s)
	}
	if !in.HTTPPush.Enabled {
		return h, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/api/push", falconhttp.NewHandler(in.MaxRequestBytes, a.pub))
	mux.Handle("/", h)
	return mux, nil
}

// Package ringcheck keeps a transfer from routing with ring parameters
// that differ from the shared ones.
//
// At start the Guard ensures the transfer's parameters in the KV bucket
// (the first process to start writes them) and compares them with what is
// stored; then it watches the bucket. While they differ (or cannot be read
// yet) Blocked returns why: the fetch loop pauses, /health answers 503
// with the reason, kestrel_transfer_ring_config_mismatch is 1 for a real
// difference, and the reason is logged once per change. When the bucket
// changes back to this transfer's parameters it resumes.
package ringcheck

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ringparams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Guard holds whether the ring parameters are confirmed by the bucket. It
// is safe for concurrent use.
type Guard struct {
	bucket   string
	want     ringparams.Params
	mismatch prometheus.Gauge
	log      *slog.Logger

	mu      sync.Mutex
	reason  string
	changed chan struct{}
}

// New returns a Guard for the parameters want in bucket; it is blocked
// until Run (or Apply) confirms them. mismatch is set to 1 while they
// differ.
func New(bucket string, want ringparams.Params, mismatch prometheus.Gauge, log *slog.Logger) *Guard {
	return &Guard{bucket: bucket, want: want, mismatch: mismatch, log: log,
		reason: "ring parameters not yet read from " + bucket, changed: make(chan struct{})}
}

// NewMismatchGauge returns kestrel_transfer_ring_config_mismatch, the gauge
// New sets, registered on reg (nil: not registered).
func NewMismatchGauge(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_ring_config_mismatch",
		Help: "1 while this transfer's ring parameters differ from the shared KV bucket's (or the bucket holds none): it does not fetch."})
	if reg != nil {
		reg.MustRegister(g)
	}
	return g
}

// Bucket returns the bucket name.
func (g *Guard) Bucket() string { return g.bucket }

// Blocked returns why this transfer must not route, or "" when its ring
// parameters equal the bucket's.
func (g *Guard) Blocked() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason
}

// Changed returns a channel closed at the next change of Blocked.
func (g *Guard) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// set records a new state; it logs and signals only on a change.
func (g *Guard) set(reason string, mismatch bool, level slog.Level) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if mismatch {
		g.mismatch.Set(1)
	} else {
		g.mismatch.Set(0)
	}
	if reason == g.reason {
		return
	}
	was := g.reason
	g.reason = reason
	close(g.changed)
	g.changed = make(chan struct{})
	if reason == "" {
		g.log.Info("ring parameters match the bucket: routing", "bucket", g.bucket, "params", g.want.String(), "was", was)
		return
	}
	g.log.Log(context.Background(), level, "not routing", "reason", reason)
}

// Apply compares the stored parameters with this transfer's and updates
// the state. The zero Params means the bucket holds none (deleted, purged
// or unreadable).
func (g *Guard) Apply(stored ringparams.Params) {
	if stored.IsZero() {
		g.set(fmt.Sprintf("no ring parameters in %s (deleted or unreadable): store them with kestrel-transfer ring set", g.bucket), true, slog.LevelError)
		return
	}
	if err := ringparams.Mismatch(stored, g.want); err != nil {
		g.set(fmt.Sprintf("config differs from %s: %v", g.bucket, err), true, slog.LevelError)
		return
	}
	g.set("", false, slog.LevelInfo)
}

// Run ensures this transfer's parameters in the bucket (creating it with
// replicas when missing), applies what is stored, and then follows every
// change until ctx ends. Errors reaching NATS are retried with backoff
// (the transfer stays blocked meanwhile); it returns nil when ctx ends.
func (g *Guard) Run(ctx context.Context, js jetstream.JetStream, replicas int, timeout time.Duration) error {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		c, cancel := context.WithTimeout(ctx, timeout)
		stored, err := ringparams.Ensure(c, js, g.bucket, replicas, g.want)
		cancel()
		if err == nil {
			g.Apply(stored)
			backoff = 500 * time.Millisecond
			// Watch reports the current value first, so a change made
			// between Ensure and here is not missed.
			err = ringparams.Watch(ctx, js, g.bucket, g.Apply)
			if err == nil {
				return nil // ctx ended
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if g.Blocked() != "" {
			g.set(fmt.Sprintf("cannot check ring parameters in %s: %v", g.bucket, err), false, slog.LevelWarn)
		} else {
			// Keep routing on the parameters already confirmed; only
			// the watch is lost until it is re-established.
			g.log.Warn("lost the watch of the ring parameters, retrying", "bucket", g.bucket, "err", err, "in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

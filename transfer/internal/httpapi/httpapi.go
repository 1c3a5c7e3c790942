// Package httpapi serves the transfer's /health and /metrics.
package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StreamCheck tells whether the ingest stream and the consumer are ready
// (stream.Keeper).
type StreamCheck interface {
	// NotReady returns why they are not ready, or "".
	NotReady() string
}

// RingCheck tells whether the ring parameters are confirmed by the shared
// bucket (ringcheck.Guard).
type RingCheck interface {
	// Blocked returns why the transfer must not route, or "".
	Blocked() string
}

// Handler returns the HTTP handler. /health is 200 when the transfer can
// do its job now: connected to NATS, the stream and the consumer ready,
// the ring parameters confirmed by the shared bucket and at least one
// judge alive; else 503 saying why (the first failing check, in that
// order): plain text for NATS, stream and judges, and {"ring": "<reason>"}
// (JSON) when the ring parameters are not confirmed, e.g.
// {"ring":"config differs from KESTREL_RING: partition_count 271 (config)
// != 512 (bucket)"}. stream and ring may be nil (no check). /metrics
// exports reg.
func Handler(nc *nats.Conn, mem *membership.Membership, stream StreamCheck, ring RingCheck, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		if st := nc.Status(); st != nats.CONNECTED {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "nats not connected (%s)\n", st)
			return
		}
		if stream != nil {
			if why := stream.NotReady(); why != "" {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "stream not ready: %s\n", why)
				return
			}
		}
		if ring != nil {
			if why := ring.Blocked(); why != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_ = json.NewEncoder(w).Encode(map[string]string{"ring": why})
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		r := mem.Ring()
		if r.Len() == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "no judge alive: fetching paused")
			return
		}
		fmt.Fprintf(w, "ok: nats connected, stream and consumer ready, %d judges %v, ring %016x\n", r.Len(), r.Members(), r.ID())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

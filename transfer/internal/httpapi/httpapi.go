// Package httpapi serves the transfer's /health and /metrics.
package httpapi

import (
	"fmt"
	"net/http"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the HTTP handler: /health is 200 when connected to NATS
// with at least one judge alive, else 503 saying why; /metrics exports reg.
func Handler(nc *nats.Conn, mem *membership.Membership, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st := nc.Status(); st != nats.CONNECTED {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "nats not connected (%s)\n", st)
			return
		}
		r := mem.Ring()
		if r.Len() == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "no judge alive: fetching paused")
			return
		}
		fmt.Fprintf(w, "ok: nats connected, %d judges %v\n", r.Len(), r.Members())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

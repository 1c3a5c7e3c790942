// Package httpapi serves the judge's HTTP endpoints: /health, /metrics,
// /history, /rules and /alarms.
package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/window"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// Deps is what the handlers read.
type Deps struct {
	Registry *prometheus.Registry
	History  func(key string) ([]window.Point, bool)
	Rules    func() *rules.Set
	// Checks name each dependency of /health; a non-nil error makes it 503.
	Checks map[string]func(ctx context.Context) error
	Active func(ctx context.Context, limit int64) ([]redis.Z, error)
}

// Handler returns the mux.
func Handler(d Deps) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for name, check := range d.Checks {
			if err := check(ctx); err != nil {
				status[name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[name] = "ok"
			}
		}
		writeJSON(w, code, status)
	})
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		if key == "" {
			http.Error(w, "missing key=<series key> (endpoint/metric or endpoint/metric/k=v,...)", http.StatusBadRequest)
			return
		}
		pts, ok := d.History(key)
		if !ok {
			http.Error(w, "unknown series "+strconv.Quote(key), http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, pts)
	})
	mux.HandleFunc("GET /rules", func(w http.ResponseWriter, r *http.Request) {
		s := d.Rules()
		f := s.File
		if f.Strategies == nil {
			f.Strategies = []rules.StrategySpec{}
		}
		if f.Expressions == nil {
			f.Expressions = []rules.ExpressionSpec{}
		}
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("GET /alarms", func(w http.ResponseWriter, r *http.Request) {
		limit := int64(1000)
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "limit must be a non-negative integer", http.StatusBadRequest)
				return
			}
			limit = n
		}
		z, err := d.Active(r.Context(), limit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		type active struct {
			ID        string `json:"id"`
			EventTime int64  `json:"eventTime"`
		}
		out := make([]active, 0, len(z))
		for _, m := range z {
			id, _ := m.Member.(string)
			out = append(out, active{ID: id, EventTime: int64(m.Score)})
		}
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

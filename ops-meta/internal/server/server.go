// Package server is ops-meta's HTTP side: the Open-Falcon heartbeat, the
// status pages, the JSON API, the fleet page, artifacts, and the rollout
// evaluation loop.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/config"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// FleetTokenHeader carries the fleet token on heartbeats (Authorization:
// Bearer <token> is accepted too).
const FleetTokenHeader = "X-Kestrel-Fleet-Token"

// RolloutLock is the store lock every rollout decision is taken under.
const RolloutLock = "kestrel_ops_meta_rollouts"

// Options builds a Server.
type Options struct {
	Config     *config.Config
	ConfigPath string // for Reload; empty disables reloading
	Store      store.Store
	Logger     *slog.Logger
	Registry   *prometheus.Registry // nil: a new one
	Now        func() time.Time     // nil: time.Now
	Instance   string               // name in logs, e.g. the hostname
}

// Server is ops-meta.
type Server struct {
	cfg      atomic.Pointer[config.Config]
	cfgPath  string
	store    store.Store
	log      *slog.Logger
	reg      *prometheus.Registry
	now      func() time.Time
	metrics  *metrics
	limiter  *ratelog.Limiter
	reloadMu sync.Mutex
	mux      *http.ServeMux
}

// New builds a Server.
func New(o Options) *Server {
	s := &Server{cfgPath: o.ConfigPath, store: o.Store, log: o.Logger, reg: o.Registry, now: o.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.cfg.Store(o.Config)
	s.metrics = newMetrics(s.reg)
	s.limiter = ratelog.New(10 * time.Second)
	s.routes()
	return s
}

// Config returns the current configuration.
func (s *Server) Config() *config.Config { return s.cfg.Load() }

// Registry returns the metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/heartbeat", s.handleHeartbeat)
	m.HandleFunc("GET /status/json/{agent}", s.handleStatusJSON)
	m.HandleFunc("GET /status/text/{agent}", s.handleStatusText)
	m.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	m.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	m.HandleFunc("GET /artifacts/", s.handleArtifacts)
	m.HandleFunc("GET /api/v1/hosts", s.handleHosts)
	m.HandleFunc("GET /api/v1/rollouts", s.handleRollouts)
	m.HandleFunc("GET /api/v1/rollouts/{id}", s.handleRollout)
	m.HandleFunc("POST /api/v1/rollouts", s.admin(s.handleCreateRollout))
	m.HandleFunc("POST /api/v1/rollouts/{id}/{action}", s.admin(s.handleRolloutAction))
	m.HandleFunc("POST /api/v1/reload", s.admin(s.handleReload))
	m.HandleFunc("GET /{$}", s.handlePage)
	s.mux = m
}

func tokenEqual(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && want != ""
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// admin wraps a changing endpoint: Authorization: Bearer <admin_token>.
// 401 without credentials, 403 with wrong ones or when no admin_token is
// configured.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want := s.Config().AdminToken
		tok, present := bearer(r)
		switch {
		case want == "":
			s.metrics.apiRejected.WithLabelValues("forbidden").Inc()
			writeError(w, http.StatusForbidden, "admin API disabled: set admin_token in the config")
		case !present:
			s.metrics.apiRejected.WithLabelValues("unauthorized").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="ops-meta"`)
			writeError(w, http.StatusUnauthorized, "missing Authorization: Bearer <admin token>")
		case !tokenEqual(tok, want):
			s.metrics.apiRejected.WithLabelValues("forbidden").Inc()
			s.warnLimited("bad_admin_token", "rejected admin request", "path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "wrong admin token")
		default:
			h(w, r)
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// Reload re-reads the config file; a bad file keeps the old config and the
// error says why.
func (s *Server) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.cfgPath == "" {
		return errors.New("no config file to reload")
	}
	c, err := config.Load(s.cfgPath)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		s.log.Error("config reload failed, keeping the old config", "err", err)
		return err
	}
	old := s.Config()
	if old.HTTP.Listen != c.HTTP.Listen || old.MySQL.DSN != c.MySQL.DSN || old.MySQL.MaxOpenConns != c.MySQL.MaxOpenConns {
		s.log.Warn("http.listen and mysql changes need a restart; kept the running ones")
	}
	s.cfg.Store(&c)
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.log.Info("config reloaded", "file", s.cfgPath, "agents", len(c.Desired.Agents()), "rollouts", len(c.Desired.Rollouts()))
	if err := s.SyncFileRollouts(ctx); err != nil {
		return fmt.Errorf("config reloaded, but file rollouts: %w", err)
	}
	return nil
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if err := s.Reload(r.Context()); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "file": s.cfgPath})
}

// warnLimited logs msg at Warn at most once per 10 s per reason (the key),
// with how many were suppressed since the last one.
func (s *Server) warnLimited(reason, msg string, args ...any) {
	if ok, suppressed := s.limiter.Allow(reason); ok {
		s.log.Warn(msg, append(args, "reason", reason, "suppressed", suppressed)...)
	}
}

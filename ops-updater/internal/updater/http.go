package updater

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/artifact"
)

// Metrics are a few counters, exported in the Prometheus text format
// without client_golang (the updater stays a small binary).
type Metrics struct {
	mu         sync.Mutex
	heartbeats map[string]uint64 // result: ok, error, error_message
	applies    map[string]uint64 // install.Result
	refusals   map[string]uint64 // artifact.Reason
}

// NewMetrics returns zeroed counters with every label of the closed sets.
func NewMetrics() *Metrics {
	m := &Metrics{heartbeats: map[string]uint64{}, applies: map[string]uint64{}, refusals: map[string]uint64{}}
	for _, r := range []string{"ok", "error", "error_message"} {
		m.heartbeats[r] = 0
	}
	for _, r := range artifact.Reasons() {
		m.refusals[string(r)] = 0
	}
	return m
}

// Heartbeat counts one heartbeat by result.
func (m *Metrics) Heartbeat(result string) { m.inc(m.heartbeats, result) }

// Apply counts one apply by result.
func (m *Metrics) Apply(result string) { m.inc(m.applies, result) }

// Refusal counts one refused artifact by reason.
func (m *Metrics) Refusal(r artifact.Reason) { m.inc(m.refusals, string(r)) }

func (m *Metrics) inc(c map[string]uint64, k string) {
	m.mu.Lock()
	c[k]++
	m.mu.Unlock()
}

// Snapshot copies the counters.
func (m *Metrics) Snapshot() map[string]map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := func(c map[string]uint64) map[string]uint64 {
		o := make(map[string]uint64, len(c))
		for k, v := range c {
			o[k] = v
		}
		return o
	}
	return map[string]map[string]uint64{"heartbeats": cp(m.heartbeats), "applies": cp(m.applies), "refusals": cp(m.refusals)}
}

func (m *Metrics) write(w *strings.Builder) {
	s := m.Snapshot()
	one := func(name, help, label string, c map[string]uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, c[k])
		}
	}
	one("kestrel_updater_heartbeats_total", "Heartbeats sent, by result.", "result", s["heartbeats"])
	one("kestrel_updater_applies_total", "Desired-state changes handled, by result.", "result", s["applies"])
	one("kestrel_updater_refusals_total", "Artifacts refused, by reason.", "reason", s["refusals"])
}

// AgentStatus is one agent in /status.
type AgentStatus struct {
	Name          string        `json:"name"`
	Version       string        `json:"version"`
	Status        string        `json:"status"`
	Error         string        `json:"error,omitempty"`
	Pending       string        `json:"pending,omitempty"`
	FailedVersion string        `json:"failed_version,omitempty"`
	Previous      string        `json:"previous,omitempty"`
	Installed     []VersionInfo `json:"installed"`
}

// VersionInfo is one installed version directory.
type VersionInfo struct {
	Version     string    `json:"version"`
	InstalledAt time.Time `json:"installed_at"`
	Sha256      string    `json:"sha256,omitempty"`
}

// Status is the /status document.
type Status struct {
	Hostname      string                       `json:"hostname"`
	Version       string                       `json:"version"`
	InstallDir    string                       `json:"install_dir"`
	LastHeartbeat Beat                         `json:"last_heartbeat"`
	Agents        []AgentStatus                `json:"agents"`
	Counters      map[string]map[string]uint64 `json:"counters"`
}

// Status builds the /status document.
func (u *Updater) Status(ctx context.Context) Status {
	u.mu.Lock()
	last := u.last
	u.mu.Unlock()
	m := u.o.Manager
	s := Status{Hostname: u.o.Hostname, Version: u.o.Version, InstallDir: m.Layout.Root, LastHeartbeat: last, Agents: []AgentStatus{}, Counters: u.metrics.Snapshot()}
	for _, ra := range u.RealAgents(ctx) {
		st := m.Layout.State(ra.Name)
		as := AgentStatus{Name: ra.Name, Version: ra.Version, Status: ra.Status, Error: ra.Error, Pending: ra.Pending, FailedVersion: st.FailedVersion, Previous: st.Previous, Installed: []VersionInfo{}}
		vs, _ := m.Layout.Versions(ra.Name)
		for _, v := range vs {
			vi := VersionInfo{Version: v.Version, InstalledAt: v.InstalledAt}
			if v.Meta != nil {
				vi.Sha256 = v.Meta.Sha256
			}
			as.Installed = append(as.Installed, vi)
		}
		s.Agents = append(s.Agents, as)
	}
	return s
}

// Handler serves /health, /status and /metrics.
func (u *Updater) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(u.Status(r.Context()))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		u.metrics.write(&b)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(b.String()))
	})
	return mux
}

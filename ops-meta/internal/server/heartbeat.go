package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/config"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/desired"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/rollout"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
	"github.com/kestrel-mon/kestrel/proto"
)

// Limits on heartbeat fields.
const (
	MaxHostname  = 255
	MaxStatus    = 64
	MaxError     = 2048
	MaxAgents    = 256
	maxTruncated = "…"
)

// ValidateHostname checks a hostname: non-empty, at most 255 bytes, valid
// UTF-8, no control characters, no spaces or '/'.
func ValidateHostname(h string) error {
	switch {
	case h == "":
		return errors.New("hostname is blank")
	case len(h) > MaxHostname:
		return fmt.Errorf("hostname is %d bytes, the limit is %d", len(h), MaxHostname)
	case !utf8.ValidString(h):
		return errors.New("hostname is not valid UTF-8")
	}
	for _, r := range h {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '/' {
			return fmt.Errorf("hostname %q contains a control character, a space or '/'", h)
		}
	}
	return nil
}

func printable(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("is %d bytes, the limit is %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("contains a control character")
		}
	}
	return nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + maxTruncated
}

// ValidateHeartbeat checks a decoded heartbeat and returns the host to
// record. The error says which field is wrong.
func ValidateHeartbeat(req *proto.HeartbeatRequest) ([]store.Agent, error) {
	if err := ValidateHostname(req.Hostname); err != nil {
		return nil, err
	}
	if len(req.RealAgents) > MaxAgents {
		return nil, fmt.Errorf("realAgents: %d agents, the limit is %d", len(req.RealAgents), MaxAgents)
	}
	seen := map[string]bool{}
	out := make([]store.Agent, 0, len(req.RealAgents))
	for i, a := range req.RealAgents {
		if !sign.ValidName(a.Name) {
			return nil, fmt.Errorf("realAgents[%d].name: %q is not a valid agent name", i, a.Name)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("realAgents[%d].name: %q appears twice", i, a.Name)
		}
		seen[a.Name] = true
		if a.Version != "" && !sign.ValidVersion(a.Version) {
			return nil, fmt.Errorf("realAgents[%d].version: %q is not a valid version", i, a.Version)
		}
		if err := printable(a.Status, MaxStatus); err != nil {
			return nil, fmt.Errorf("realAgents[%d].status %w", i, err)
		}
		if a.Pending != "" && !sign.ValidVersion(a.Pending) {
			return nil, fmt.Errorf("realAgents[%d].pending: %q is not a valid version", i, a.Pending)
		}
		if !utf8.ValidString(a.Error) {
			return nil, fmt.Errorf("realAgents[%d].error is not valid UTF-8", i)
		}
		out = append(out, store.Agent{Name: a.Name, Version: a.Version, Status: strings.TrimSpace(a.Status),
			Timestamp: a.Timestamp, Error: truncateUTF8(a.Error, MaxError), Pending: a.Pending})
	}
	return out, nil
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	s.warnLimited(reason, "rejected heartbeat", "remote", r.RemoteAddr, "err", msg)
	http.Error(w, msg, code)
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	s.metrics.heartbeats.Inc()
	cfg := s.Config()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.reject(w, r, http.StatusMethodNotAllowed, "method", "use POST")
		return
	}
	if cfg.FleetToken != "" {
		tok := r.Header.Get(FleetTokenHeader)
		if tok == "" {
			tok, _ = bearer(r)
		}
		switch {
		case tok == "":
			s.reject(w, r, http.StatusUnauthorized, "unauthorized", "missing fleet token: send header "+FleetTokenHeader)
			return
		case !tokenEqual(tok, cfg.FleetToken):
			s.reject(w, r, http.StatusForbidden, "forbidden", "wrong fleet token")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.HTTP.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.reject(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is over %d bytes", mbe.Limit))
		return
	case err != nil:
		s.reject(w, r, http.StatusBadRequest, "bad_json", "cannot read body: "+err.Error())
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		s.reject(w, r, http.StatusBadRequest, "empty_body", "body is blank")
		return
	}
	var req proto.HeartbeatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.reject(w, r, http.StatusBadRequest, "bad_json", "body is not a heartbeat JSON object: "+err.Error())
		return
	}
	agents, err := ValidateHeartbeat(&req)
	if err != nil {
		reason := "bad_agent"
		if strings.HasPrefix(err.Error(), "hostname") {
			reason = "bad_hostname"
		}
		s.reject(w, r, http.StatusBadRequest, reason, err.Error())
		return
	}
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	ctx := r.Context()
	if err := s.store.RecordHeartbeat(ctx, store.Host{Name: req.Hostname, Addr: addr, LastSeen: s.now(), Agents: agents}); err != nil {
		s.metrics.storeErrors.WithLabelValues("record_heartbeat").Inc()
		s.warnLimited("store_record", "cannot record heartbeat", "host", req.Hostname, "err", err)
	}
	rollouts, err := s.store.Rollouts(ctx)
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("rollouts").Inc()
		s.metrics.rejected.WithLabelValues("store_error").Inc()
		s.warnLimited("store_rollouts", "cannot read rollouts", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, proto.HeartbeatResponse{ErrorMessage: "ops-meta cannot read its rollout state; try later", DesiredAgents: []proto.DesiredAgent{}})
		return
	}
	resp := proto.HeartbeatResponse{DesiredAgents: s.Desired(cfg, rollouts, req.Hostname)}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// Governing returns the rollout that decides the agent's version: the
// running or paused one, else the newest finished one as long as the
// agent's default version is still its From (the operator has not moved the
// default since). nil when none.
func Governing(rollouts []store.Rollout, agent *desired.Agent) *store.Rollout {
	var last *store.Rollout
	for i := range rollouts {
		r := &rollouts[i]
		if r.Agent != agent.Default.Name {
			continue
		}
		if r.Active() {
			return r
		}
		last = r
	}
	if last != nil && last.From == agent.Default.Version {
		return last
	}
	return nil
}

// Desired returns the desired agents of a host, in config order.
//
// The host's effective spec is the default merged with the last matching
// prefix override. A governing rollout then sets the version (and the wave):
// it takes precedence over the overrides for the version only, so an
// override's tarball mirror, md5 and health check still apply. A host whose
// effective spec is cmd stop stays stopped: it is told the rollout's version
// with cmd stop and no wave, and rollout.Accounted leaves it out of the
// rollout's accounting (it never reports the new version started, and must
// not fail or block the rollout).
func (s *Server) Desired(cfg *config.Config, rollouts []store.Rollout, hostname string) []proto.DesiredAgent {
	agents := cfg.Desired.Agents()
	out := make([]proto.DesiredAgent, 0, len(agents))
	for i := range agents {
		a := &agents[i]
		spec := a.SpecFor(hostname)
		wave := 0
		if r := Governing(rollouts, a); r != nil {
			var w int
			spec.Version, w = rollout.Desired(r, hostname)
			if spec.Cmd != desired.CmdStop {
				wave = w
			}
		}
		d := proto.DesiredAgent{Name: a.Default.Name, Version: spec.Version, Tarball: spec.Tarball, Md5: spec.Md5, Cmd: spec.Cmd, Wave: wave}
		if d.Tarball == "" && cfg.ArtifactsDir != "" && cfg.PublicURL != "" {
			d.Tarball = strings.TrimRight(cfg.PublicURL, "/") + "/artifacts"
		}
		if spec.Health != nil {
			d.Health = &proto.HealthCheck{HTTP: spec.Health.HTTP, Timeout: spec.Health.Timeout}
		}
		d.Sha256, d.Signature = s.artifactInfo(cfg, a, d.Name, d.Version)
		out = append(out, d)
	}
	return out
}

// artifactInfo returns the sha256 and signature of a version: from the
// sidecars in artifacts_dir when the tarball is there, else from the
// config's versions.
func (s *Server) artifactInfo(cfg *config.Config, a *desired.Agent, name, version string) (string, string) {
	if cfg.ArtifactsDir != "" {
		path := filepath.Join(cfg.ArtifactsDir, sign.ArtifactFile(name, version))
		if _, err := os.Stat(path); err == nil {
			sc, err := sign.ReadSidecars(path)
			if err == nil {
				return sc.Sha256, sc.Signature
			}
			s.warnLimited("sidecar", "cannot read artifact sidecars", "file", path, "err", err)
		}
	}
	if vi, ok := a.Versions[version]; ok {
		return vi.Sha256, vi.Signature
	}
	return "", ""
}

func (s *Server) handleArtifacts(w http.ResponseWriter, r *http.Request) {
	dir := s.Config().ArtifactsDir
	name := strings.TrimPrefix(r.URL.Path, "/artifacts/")
	if dir == "" || name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// handleStatusJSON is Open-Falcon's /status/json/<agent>: a JSON object
// hostname → the host's real agent (null when the host does not run it).
func (s *Server) handleStatusJSON(w http.ResponseWriter, r *http.Request) {
	hosts, err := s.store.Hosts(r.Context())
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("hosts").Inc()
		http.Error(w, "cannot read inventory", http.StatusServiceUnavailable)
		return
	}
	agent := r.PathValue("agent")
	out := make(map[string]*proto.RealAgent, len(hosts))
	for _, h := range hosts {
		if a, ok := h.Agent(agent); ok {
			out[h.Name] = &proto.RealAgent{Name: a.Name, Version: a.Version, Status: a.Status, Timestamp: a.Timestamp, Error: a.Error, Pending: a.Pending}
		} else {
			out[h.Name] = nil
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// handleStatusText is Open-Falcon's /status/text/<agent>: one line per host,
// sorted: "<hostname> <version> <status> <timestamp> <YYYY-MM-DD hh:mm:ss UTC>",
// or "<hostname> no such agent".
func (s *Server) handleStatusText(w http.ResponseWriter, r *http.Request) {
	hosts, err := s.store.Hosts(r.Context())
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("hosts").Inc()
		http.Error(w, "cannot read inventory", http.StatusServiceUnavailable)
		return
	}
	agent := r.PathValue("agent")
	var b strings.Builder
	for _, h := range hosts {
		if a, ok := h.Agent(agent); ok {
			fmt.Fprintf(&b, "%s %s %s %d %s\n", h.Name, a.Version, a.Status, a.Timestamp, unixUTC(a.Timestamp))
		} else {
			fmt.Fprintf(&b, "%s no such agent\n", h.Name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(b.String()))
}

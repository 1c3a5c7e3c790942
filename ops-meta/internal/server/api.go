package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/desired"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/rollout"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
)

func unixUTC(ts int64) string { return time.Unix(ts, 0).UTC().Format("2006-01-02 15:04:05") }

// HostView is a host in the API.
type HostView struct {
	store.Host
	Stale bool `json:"stale"`
}

func (s *Server) hostViews(ctx context.Context) ([]HostView, error) {
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("hosts").Inc()
		return nil, err
	}
	stale := s.Config().Inventory.StaleAfter
	now := s.now()
	out := make([]HostView, len(hosts))
	for i, h := range hosts {
		if h.Agents == nil {
			h.Agents = []store.Agent{}
		}
		out[i] = HostView{Host: h, Stale: stale > 0 && now.Sub(h.LastSeen) > stale}
	}
	return out, nil
}

func (s *Server) handleHosts(w http.ResponseWriter, r *http.Request) {
	hv, err := s.hostViews(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot read inventory: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": hv})
}

// RolloutView is a rollout in the API and on the page.
type RolloutView struct {
	ID               string                 `json:"id"`
	Agent            string                 `json:"agent"`
	From             string                 `json:"from"`
	To               string                 `json:"to"`
	Waves            []float64              `json:"waves"`
	Soak             string                 `json:"soak"`
	Deadline         string                 `json:"deadline"`
	FailureThreshold string                 `json:"failureThreshold"`
	Source           string                 `json:"source"`
	Status           string                 `json:"status"`
	Wave             int                    `json:"wave"`
	Reason           string                 `json:"reason,omitempty"`
	HealthySince     time.Time              `json:"healthySince,omitzero"`
	CreatedAt        time.Time              `json:"createdAt"`
	UpdatedAt        time.Time              `json:"updatedAt"`
	EndedAt          time.Time              `json:"endedAt,omitzero"`
	Revision         int64                  `json:"revision"`
	Progress         []rollout.WaveProgress `json:"progress"`
	Hosts            []rollout.HostState    `json:"hosts,omitempty"`
}

// view computes r's progress over the fresh fleet minus the hosts the
// current config keeps stopped (rollout.Accounted), as Evaluate does.
func (s *Server) view(r *store.Rollout, fleet []store.Host, withHosts bool) RolloutView {
	p := rollout.Compute(r, rollout.Accounted(fleet, s.Config().Desired.Agent(r.Agent)), s.now())
	v := RolloutView{ID: r.ID, Agent: r.Agent, From: r.From, To: r.To, Waves: r.Waves, Soak: r.Soak.String(),
		Deadline: r.Deadline.String(), FailureThreshold: r.FailureThreshold, Source: r.Source, Status: r.Status,
		Wave: r.Wave, Reason: r.Reason, HealthySince: r.HealthySince, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		EndedAt: r.EndedAt, Revision: r.Revision, Progress: p.Waves}
	if v.FailureThreshold == "" {
		v.FailureThreshold = "default"
	}
	if withHosts {
		v.Hosts = p.Hosts
	}
	return v
}

func (s *Server) fleet(ctx context.Context) ([]store.Host, error) {
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		s.metrics.storeErrors.WithLabelValues("hosts").Inc()
		return nil, err
	}
	return rollout.Fleet(hosts, s.now(), s.Config().Inventory.StaleAfter), nil
}

func (s *Server) handleRollouts(w http.ResponseWriter, r *http.Request) {
	rs, err := s.store.Rollouts(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot read rollouts: "+err.Error())
		return
	}
	fleet, err := s.fleet(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot read inventory: "+err.Error())
		return
	}
	out := make([]RolloutView, len(rs))
	for i := range rs {
		out[i] = s.view(&rs[i], fleet, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollouts": out})
}

func (s *Server) handleRollout(w http.ResponseWriter, r *http.Request) {
	ro, err := s.store.Rollout(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot read rollout: "+err.Error())
		return
	}
	fleet, err := s.fleet(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot read inventory: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.view(&ro, fleet, true))
}

// CreateRollout validates and stores a new rollout (source "api" or
// "file"). The error is meant for the caller.
func (s *Server) CreateRollout(ctx context.Context, spec desired.RolloutSpec, source string) (store.Rollout, error) {
	cfg := s.Config()
	now := s.now()
	if spec.ID == "" {
		spec.ID = fmt.Sprintf("%s-%s-%d", spec.Agent, spec.To, now.Unix())
	}
	cfg.Desired.FillRollout(&spec)
	if err := cfg.Desired.ValidateRollout(&spec); err != nil {
		return store.Rollout{}, err
	}
	if cfg.ArtifactsDir != "" {
		path := filepath.Join(cfg.ArtifactsDir, sign.ArtifactFile(spec.Agent, spec.To))
		if _, err := os.Stat(path); err != nil {
			return store.Rollout{}, fmt.Errorf("to: artifact %s is not in artifacts_dir", filepath.Base(path))
		}
	}
	ro := rollout.New(spec, source, now)
	err := s.store.WithLock(ctx, RolloutLock, func(ctx context.Context) error {
		rs, err := s.store.Rollouts(ctx)
		if err != nil {
			return err
		}
		for _, o := range rs {
			if o.ID == ro.ID {
				return fmt.Errorf("id: rollout %q: %w", ro.ID, store.ErrExists)
			}
			if o.Agent == ro.Agent && o.Active() {
				return fmt.Errorf("agent: rollout %q of %s is %s; pause is not enough, abort it or let it finish first: %w", o.ID, o.Agent, o.Status, store.ErrExists)
			}
		}
		return s.store.CreateRollout(ctx, ro)
	})
	if err != nil {
		return store.Rollout{}, err
	}
	s.log.Info("rollout created", "id", ro.ID, "agent", ro.Agent, "from", ro.From, "to", ro.To, "waves", ro.Waves, "source", source)
	return ro, nil
}

func (s *Server) handleCreateRollout(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.Config().HTTP.MaxBodyBytes))
	dec.DisallowUnknownFields()
	var spec desired.RolloutSpec
	if err := dec.Decode(&spec); err != nil {
		s.metrics.apiRejected.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusBadRequest, "body is not a rollout JSON object {id, agent, from, to, waves, soak, deadline, failure_threshold}: "+err.Error())
		return
	}
	ro, err := s.CreateRollout(r.Context(), spec, "api")
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, store.ErrExists) {
			code = http.StatusConflict
		}
		s.metrics.apiRejected.WithLabelValues("bad_request").Inc()
		writeError(w, code, err.Error())
		return
	}
	fleet, _ := s.fleet(r.Context())
	writeJSON(w, http.StatusCreated, s.view(&ro, fleet, false))
}

// RolloutAction pauses, resumes or aborts a rollout under the lock.
func (s *Server) RolloutAction(ctx context.Context, id, action string) (store.Rollout, error) {
	var out store.Rollout
	err := s.store.WithLock(ctx, RolloutLock, func(ctx context.Context) error {
		ro, err := s.store.Rollout(ctx, id)
		if err != nil {
			return err
		}
		now := s.now()
		switch action {
		case "pause":
			err = rollout.Pause(&ro, now)
		case "resume":
			err = rollout.Resume(&ro, now)
		case "abort":
			err = rollout.Abort(&ro, now, "aborted through the API")
		default:
			return fmt.Errorf("unknown action %q (pause, resume, abort)", action)
		}
		if err != nil {
			return err
		}
		ro.Revision++
		ro.UpdatedAt = now
		out = ro
		return s.store.UpdateRollout(ctx, ro)
	})
	if err == nil {
		s.log.Info("rollout "+action, "id", id, "status", out.Status)
	}
	return out, err
}

func (s *Server) handleRolloutAction(w http.ResponseWriter, r *http.Request) {
	ro, err := s.RolloutAction(r.Context(), r.PathValue("id"), r.PathValue("action"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		s.metrics.apiRejected.WithLabelValues("bad_request").Inc()
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	fleet, _ := s.fleet(r.Context())
	writeJSON(w, http.StatusOK, s.view(&ro, fleet, false))
}

// SyncFileRollouts creates the config file's rollouts that the store does
// not have yet. Existing ones keep their stored state.
func (s *Server) SyncFileRollouts(ctx context.Context) error {
	cfg := s.Config()
	var errs []error
	for _, spec := range cfg.Desired.Rollouts() {
		if _, err := s.store.Rollout(ctx, spec.ID); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		if _, err := s.CreateRollout(ctx, spec, "file"); err != nil && !errors.Is(err, store.ErrExists) {
			errs = append(errs, fmt.Errorf("rollout %q: %w", spec.ID, err))
		} else if err != nil {
			s.log.Warn("file rollout not started", "id", spec.ID, "err", err)
		}
	}
	return errors.Join(errs...)
}

// Evaluate runs one evaluation round under the store lock: every running
// rollout is checked and promoted, completed or halted.
func (s *Server) Evaluate(ctx context.Context) error {
	err := s.store.WithLock(ctx, RolloutLock, func(ctx context.Context) error {
		rs, err := s.store.Rollouts(ctx)
		if err != nil {
			return err
		}
		hosts, err := s.store.Hosts(ctx)
		if err != nil {
			return err
		}
		now := s.now()
		// One config for the whole round: the one heartbeats are answered
		// with, so the hosts it keeps stopped are the ones left out.
		cfg := s.Config()
		fleet := rollout.Fleet(hosts, now, cfg.Inventory.StaleAfter)
		s.metrics.hosts.WithLabelValues("fresh").Set(float64(len(fleet)))
		s.metrics.hosts.WithLabelValues("stale").Set(float64(len(hosts) - len(fleet)))
		for i := range rs {
			ro := &rs[i]
			out, p := rollout.Evaluate(ro, rollout.Accounted(fleet, cfg.Desired.Agent(ro.Agent)), now)
			s.observe(ro, p)
			if out == rollout.Unchanged {
				continue
			}
			ro.Revision++
			ro.UpdatedAt = now
			if err := s.store.UpdateRollout(ctx, *ro); err != nil {
				return err
			}
			switch out {
			case rollout.Promoted:
				s.metrics.promotions.Inc()
				s.log.Info("rollout wave promoted", "id", ro.ID, "wave", ro.Wave, "percent", ro.Waves[ro.Wave-1])
			case rollout.CompletedNow:
				s.metrics.completions.Inc()
				s.log.Info("rollout completed", "id", ro.ID, "to", ro.To)
			case rollout.HaltedNow:
				s.metrics.halts.Inc()
				s.log.Warn("rollout halted, every host goes back", "id", ro.ID, "to", ro.From, "reason", ro.Reason)
			}
		}
		return nil
	})
	if err != nil {
		s.metrics.evaluations.WithLabelValues("error").Inc()
		return err
	}
	s.metrics.evaluations.WithLabelValues("ok").Inc()
	return nil
}

var statuses = []string{store.Running, store.Paused, store.Completed, store.Halted, store.Aborted}

func (s *Server) observe(ro *store.Rollout, p rollout.Progress) {
	wave := ro.Wave
	if ro.Status == store.Halted || ro.Status == store.Aborted {
		wave = 0
	}
	s.metrics.rolloutWave.WithLabelValues(ro.ID).Set(float64(wave))
	for _, st := range statuses {
		v := 0.0
		if st == ro.Status {
			v = 1
		}
		s.metrics.rolloutStatus.WithLabelValues(ro.ID, st).Set(v)
	}
	counts := map[string]int{}
	for _, h := range p.Hosts {
		counts[h.State]++
	}
	for _, st := range []string{rollout.StateWaiting, rollout.StatePending, rollout.StateHealthy, rollout.StateFailed} {
		s.metrics.rolloutHosts.WithLabelValues(ro.ID, st).Set(float64(counts[st]))
	}
}

// Run evaluates rollouts every rollout.evaluate_every until ctx ends.
func (s *Server) Run(ctx context.Context) {
	for {
		if err := s.Evaluate(ctx); err != nil && ctx.Err() == nil {
			s.warnLimited("evaluate", "rollout evaluation failed", "err", err)
		}
		t := time.NewTimer(s.Config().Desired.Defaults().EvaluateEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

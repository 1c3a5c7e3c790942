// Package updater runs the heartbeat loop: report the real agents to
// ops-meta, receive the desired agents, and hand each change to the
// install manager (one worker per agent at a time).
package updater

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/artifact"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/install"
	"github.com/kestrel-mon/kestrel/proto"
)

// Options configure an Updater.
type Options struct {
	Hostname     string
	MetaURLs     []string
	FleetToken   string
	Interval     time.Duration
	Timeout      time.Duration // per heartbeat request
	InitialDelay func(interval time.Duration) time.Duration
	Manager      *install.Manager
	Log          *slog.Logger
	Version      string // of ops-updater, for /status
}

// Updater is the heartbeat loop.
type Updater struct {
	o      Options
	client *http.Client
	wg     sync.WaitGroup

	mu      sync.Mutex
	busy    map[string]string // agent -> version being applied
	last    Beat
	metrics *Metrics
}

// Beat is the outcome of the last heartbeat.
type Beat struct {
	Time         time.Time            `json:"time"`
	URL          string               `json:"url,omitempty"`
	OK           bool                 `json:"ok"`
	Error        string               `json:"error,omitempty"`
	ErrorMessage string               `json:"error_message,omitempty"`
	Reported     []proto.RealAgent    `json:"reported"`
	Desired      []proto.DesiredAgent `json:"desired"`
}

// New builds an Updater.
func New(o Options) *Updater {
	if o.InitialDelay == nil {
		o.InitialDelay = func(iv time.Duration) time.Duration { return rand.N(iv) }
	}
	u := &Updater{
		o:       o,
		client:  &http.Client{Timeout: o.Timeout},
		busy:    map[string]string{},
		metrics: NewMetrics(),
	}
	o.Manager.OnRefusal = func(r artifact.Reason) { u.metrics.Refusal(r) }
	u.o = o
	return u
}

// Metrics returns the counters.
func (u *Updater) Metrics() *Metrics { return u.metrics }

// Run recovers every agent, then heartbeats until ctx ends; it returns
// after the running installs have finished or rolled back.
func (u *Updater) Run(ctx context.Context) error {
	log := u.o.Log
	if err := u.o.Manager.RecoverAll(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	delay := u.o.InitialDelay(u.o.Interval)
	log.Info("first heartbeat scheduled", "in", delay.Round(time.Millisecond), "interval", u.o.Interval)
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			start := time.Now()
			u.wg.Wait()
			log.Info("installs finished", "took", time.Since(start).Round(time.Millisecond))
			return nil
		case <-t.C:
		}
		u.BeatOnce(ctx)
		t.Reset(u.o.Interval)
	}
}

// BeatOnce sends one heartbeat and starts a worker for every desired
// change.
func (u *Updater) BeatOnce(ctx context.Context) {
	log := u.o.Log
	req := proto.HeartbeatRequest{Hostname: u.o.Hostname, RealAgents: u.RealAgents(ctx)}
	resp, url, err := u.post(ctx, req)
	b := Beat{Time: time.Now().UTC(), URL: url, Reported: req.RealAgents}
	if err != nil {
		b.Error = err.Error()
		u.metrics.Heartbeat("error")
		log.Warn("heartbeat failed", "err", err)
		u.setLast(b)
		return
	}
	b.Desired = resp.DesiredAgents
	if resp.ErrorMessage != "" {
		b.ErrorMessage = resp.ErrorMessage
		u.metrics.Heartbeat("error_message")
		log.Warn("ops-meta answered with an error, doing nothing", "url", url, "error_message", resp.ErrorMessage)
		u.setLast(b)
		return
	}
	b.OK = true
	u.metrics.Heartbeat("ok")
	u.setLast(b)
	log.Debug("heartbeat", "url", url, "reported", len(req.RealAgents), "desired", len(resp.DesiredAgents))
	for _, d := range resp.DesiredAgents {
		if err := install.CheckDesired(d); err != nil {
			u.metrics.Apply(string(install.ResultError))
			log.Warn("ignoring bad desired agent from ops-meta", "err", err)
			continue
		}
		u.mu.Lock()
		if _, running := u.busy[d.Name]; running {
			u.mu.Unlock()
			continue
		}
		u.busy[d.Name] = d.Version
		u.mu.Unlock()
		u.wg.Add(1)
		go func(d proto.DesiredAgent) {
			defer u.wg.Done()
			res, err := u.o.Manager.Apply(ctx, d)
			u.metrics.Apply(string(res))
			if err != nil && res != install.ResultRefused && res != install.ResultRolledBack {
				log.Warn("apply failed", "agent", d.Name, "version", d.Version, "result", string(res), "err", err)
			}
			u.mu.Lock()
			delete(u.busy, d.Name)
			u.mu.Unlock()
		}(d)
	}
}

func (u *Updater) setLast(b Beat) {
	u.mu.Lock()
	u.last = b
	u.mu.Unlock()
}

// RealAgents reads the install dir: every agent with a .version, plus any
// agent with an error or a version being installed.
func (u *Updater) RealAgents(ctx context.Context) []proto.RealAgent {
	m := u.o.Manager
	names, err := m.Layout.Agents()
	if err != nil {
		u.o.Log.Error("cannot list agents", "err", err)
	}
	out := []proto.RealAgent{}
	now := time.Now().Unix()
	for _, n := range names {
		active, err := m.Layout.Active(n)
		if err != nil {
			u.o.Log.Error("cannot read active version", "agent", n, "err", err)
		}
		st := m.Layout.State(n)
		u.mu.Lock()
		pending, running := u.busy[n]
		u.mu.Unlock()
		if !running || pending == active {
			pending = ""
			if mk, _ := m.Layout.Marker(n); mk != nil {
				pending = mk.Version
			}
		}
		hasVersion := m.Layout.HasVersionFile(n) && active != ""
		if !hasVersion && st.Error == "" && pending == "" {
			continue
		}
		ra := proto.RealAgent{Name: n, Version: active, Status: proto.AgentStopped, Timestamp: now, Error: st.Error, Pending: pending}
		if hasVersion {
			ra.Status = m.Control.Status(ctx, m.Layout.VersionDir(n, active))
		}
		out = append(out, ra)
	}
	return out
}

func (u *Updater) post(ctx context.Context, hb proto.HeartbeatRequest) (*proto.HeartbeatResponse, string, error) {
	body, err := json.Marshal(hb)
	if err != nil {
		return nil, "", err
	}
	var errs []string
	for _, base := range u.o.MetaURLs {
		url := strings.TrimRight(base, "/") + "/heartbeat"
		resp, err := u.postOne(ctx, url, body)
		if err == nil {
			return resp, url, nil
		}
		errs = append(errs, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", errors.New(strings.Join(errs, "; "))
}

func (u *Updater) postOne(ctx context.Context, url string, body []byte) (*proto.HeartbeatResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if u.o.FleetToken != "" {
		req.Header.Set(artifact.FleetTokenHeader, u.o.FleetToken)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s: %s", url, resp.Status, strings.TrimSpace(string(b[:min(len(b), 200)])))
	}
	var hr proto.HeartbeatResponse
	if err := json.Unmarshal(b, &hr); err != nil {
		return nil, fmt.Errorf("%s: bad response: %v", url, err)
	}
	return &hr, nil
}

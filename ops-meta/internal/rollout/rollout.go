// Package rollout decides which wave a host is in and when a rollout is
// promoted, completed or halted. It is pure: the caller passes the hosts and
// the time, and stores the result.
//
// A host's bucket is the first 8 bytes of sha256(rollout id + "/" +
// hostname), big-endian, mod 10000; wave i (from 1) holds the buckets in
// [waves[i-1]*100, waves[i]*100) with waves as cumulative percentages. So a
// host's wave never changes and hosts that join later fall into theirs.
package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/desired"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
	"github.com/kestrel-mon/kestrel/proto"
)

// Buckets is the number of buckets (0.01 % each).
const Buckets = 10000

// Bucket returns the host's stable bucket in [0, Buckets).
func Bucket(id, hostname string) int {
	sum := sha256.Sum256([]byte(id + "/" + hostname))
	return int(binary.BigEndian.Uint64(sum[:8]) % Buckets)
}

// WaveOf returns the wave (from 1) a bucket falls in.
func WaveOf(waves []float64, bucket int) int {
	for i, w := range waves {
		if bucket < int(math.Round(w*100)) {
			return i + 1
		}
	}
	return len(waves)
}

// HostWave returns the host's wave in the rollout.
func HostWave(r *store.Rollout, hostname string) int {
	return WaveOf(r.Waves, Bucket(r.ID, hostname))
}

// Desired returns the version a host should run under the rollout and the
// host's wave (0 when the rollout no longer sets waves).
func Desired(r *store.Rollout, hostname string) (version string, wave int) {
	w := HostWave(r, hostname)
	switch r.Status {
	case store.Running, store.Paused:
		if w <= r.Wave {
			return r.To, w
		}
		return r.From, w
	case store.Completed:
		return r.To, 0
	default: // halted, aborted
		return r.From, 0
	}
}

// Threshold returns how many failed hosts halt a wave of n hosts.
func Threshold(spec string, n int) int {
	count, pct, err := desired.ParseThreshold(spec)
	switch {
	case err != nil:
	case count > 0:
		return count
	case pct > 0:
		return max(1, int(math.Ceil(pct*float64(n)/100)))
	}
	if n < 20 {
		return 1
	}
	return int(math.Ceil(0.05 * float64(n)))
}

// Host states within a rollout.
const (
	StateWaiting = "waiting" // wave not promoted yet
	StateHealthy = "healthy" // reports the new version started, no error
	StatePending = "pending" // promoted, not there yet, within the deadline
	StateFailed  = "failed"  // error, or missed the deadline
)

// HostState is one host's view in a rollout.
type HostState struct {
	Hostname string `json:"hostname"`
	Wave     int    `json:"wave"`
	Bucket   int    `json:"bucket"`
	State    string `json:"state"`
	Version  string `json:"version"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	Pending  string `json:"pending,omitempty"`
}

// WaveProgress summarises one wave.
type WaveProgress struct {
	Wave      int       `json:"wave"`
	Percent   float64   `json:"percent"`
	Promoted  bool      `json:"promoted"`
	OpenedAt  time.Time `json:"openedAt,omitzero"`
	Hosts     int       `json:"hosts"`
	Healthy   int       `json:"healthy"`
	Pending   int       `json:"pending"`
	Failed    int       `json:"failed"`
	Waiting   int       `json:"waiting"`
	Threshold int       `json:"threshold"`
}

// Progress is a rollout with its waves and hosts.
type Progress struct {
	Waves []WaveProgress `json:"waves"`
	Hosts []HostState    `json:"hosts"`
}

// Fleet returns the hosts that count in rollouts: seen within staleAfter.
func Fleet(hosts []store.Host, now time.Time, staleAfter time.Duration) []store.Host {
	out := make([]store.Host, 0, len(hosts))
	for _, h := range hosts {
		if staleAfter <= 0 || now.Sub(h.LastSeen) <= staleAfter {
			out = append(out, h)
		}
	}
	return out
}

// Accounted returns the hosts of the fleet that count in a rollout of agent
// a: every host except those whose effective spec under the config (default
// merged with the matching override, see desired.Agent.SpecFor) is cmd stop.
// An operator keeps the agent stopped on those hosts; the rollout does not
// start it (the heartbeat keeps telling them stop), so they never report the
// new version started and must not count: they are in no wave's host set,
// never fail, and never block promotion or completion. a is the agent as
// configured in the caller's current config (nil: the agent is not
// configured; nobody is left out). Pass the same config the heartbeat
// handler answers with.
func Accounted(fleet []store.Host, a *desired.Agent) []store.Host {
	if a == nil {
		return fleet
	}
	out := make([]store.Host, 0, len(fleet))
	for _, h := range fleet {
		if !a.Stopped(h.Name) {
			out = append(out, h)
		}
	}
	return out
}

// Compute returns the progress of r over the fleet at now. The fleet is the
// accounted one (see Accounted).
func Compute(r *store.Rollout, fleet []store.Host, now time.Time) Progress {
	p := Progress{Waves: make([]WaveProgress, len(r.Waves)), Hosts: make([]HostState, 0, len(fleet))}
	for i, w := range r.Waves {
		p.Waves[i] = WaveProgress{Wave: i + 1, Percent: w, Promoted: r.Status != store.Halted && r.Status != store.Aborted && i < r.Wave}
		if i < len(r.WaveOpenedAt) {
			p.Waves[i].OpenedAt = r.WaveOpenedAt[i]
		}
	}
	for _, h := range fleet {
		b := Bucket(r.ID, h.Name)
		w := WaveOf(r.Waves, b)
		hs := HostState{Hostname: h.Name, Wave: w, Bucket: b}
		a, has := h.Agent(r.Agent)
		if has {
			hs.Version, hs.Status, hs.Error, hs.Pending = a.Version, a.Status, a.Error, a.Pending
		}
		wp := &p.Waves[w-1]
		wp.Hosts++
		healthy := has && a.Version == r.To && a.Status == proto.AgentStarted && a.Error == "" && a.Pending == ""
		switch {
		case w > r.Wave:
			hs.State = StateWaiting
			wp.Waiting++
		case healthy:
			hs.State = StateHealthy
			wp.Healthy++
		case has && a.Error != "":
			hs.State = StateFailed
			wp.Failed++
		default:
			start := h.FirstSeen
			if w-1 < len(r.WaveOpenedAt) && r.WaveOpenedAt[w-1].After(start) {
				start = r.WaveOpenedAt[w-1]
			}
			if r.ResumedAt.After(start) {
				start = r.ResumedAt
			}
			if now.Sub(start) > r.Deadline {
				hs.State = StateFailed
				wp.Failed++
			} else {
				hs.State = StatePending
				wp.Pending++
			}
		}
		p.Hosts = append(p.Hosts, hs)
	}
	for i := range p.Waves {
		p.Waves[i].Threshold = Threshold(r.FailureThreshold, p.Waves[i].Hosts)
	}
	return p
}

// Outcome is what Evaluate did.
type Outcome int

// Outcomes.
const (
	Unchanged Outcome = iota
	Updated           // bookkeeping only (healthy-since)
	Promoted
	CompletedNow
	HaltedNow
)

// Evaluate advances a running rollout: halt when a promoted wave's failed
// hosts reach its threshold, otherwise promote (or complete) once every host
// of the promoted waves has been healthy for the soak time. It changes r in
// place and returns what happened. The fleet is the accounted one (see
// Accounted).
func Evaluate(r *store.Rollout, fleet []store.Host, now time.Time) (Outcome, Progress) {
	p := Compute(r, fleet, now)
	if r.Status != store.Running {
		return Unchanged, p
	}
	for _, w := range p.Waves[:r.Wave] {
		if w.Failed > 0 && w.Failed >= w.Threshold {
			r.Status = store.Halted
			r.Reason = fmt.Sprintf("wave %d: %d of %d hosts failed (threshold %d)", w.Wave, w.Failed, w.Hosts, w.Threshold)
			r.EndedAt = now
			r.HealthySince = time.Time{}
			return HaltedNow, Compute(r, fleet, now)
		}
	}
	all := true
	for _, w := range p.Waves[:r.Wave] {
		if w.Healthy != w.Hosts {
			all = false
		}
	}
	if !all {
		if !r.HealthySince.IsZero() {
			r.HealthySince = time.Time{}
			return Updated, p
		}
		return Unchanged, p
	}
	if r.HealthySince.IsZero() {
		r.HealthySince = now
		if r.Soak > 0 {
			return Updated, p
		}
	}
	if now.Sub(r.HealthySince) < r.Soak {
		return Unchanged, p
	}
	r.HealthySince = time.Time{}
	if r.Wave >= len(r.Waves) {
		r.Status = store.Completed
		r.EndedAt = now
		return CompletedNow, Compute(r, fleet, now)
	}
	r.Wave++
	r.WaveOpenedAt = append(r.WaveOpenedAt, now)
	return Promoted, Compute(r, fleet, now)
}

// New returns a running rollout from a filled, validated spec, with wave 1
// promoted at now.
func New(spec desired.RolloutSpec, source string, now time.Time) store.Rollout {
	return store.Rollout{
		ID: spec.ID, Agent: spec.Agent, From: spec.From, To: spec.To,
		Waves: append([]float64(nil), spec.Waves...), Soak: spec.Soak, Deadline: spec.Deadline,
		FailureThreshold: spec.FailureThreshold, Source: source,
		Status: store.Running, Wave: 1, WaveOpenedAt: []time.Time{now},
		CreatedAt: now, UpdatedAt: now,
	}
}

// Action errors.
var (
	ErrFinal = fmt.Errorf("rollout is final")
)

// Pause stops promotion and halting; hosts keep their versions.
func Pause(r *store.Rollout, now time.Time) error {
	if r.Status != store.Running {
		return fmt.Errorf("cannot pause a %s rollout", r.Status)
	}
	r.Status = store.Paused
	r.HealthySince = time.Time{}
	return nil
}

// Resume continues a paused rollout; the open wave's deadline and the soak
// start again from now.
func Resume(r *store.Rollout, now time.Time) error {
	if r.Status != store.Paused {
		return fmt.Errorf("cannot resume a %s rollout", r.Status)
	}
	r.Status = store.Running
	r.HealthySince = time.Time{}
	r.ResumedAt = now
	return nil
}

// Abort sends every host back to From; final.
func Abort(r *store.Rollout, now time.Time, reason string) error {
	if !r.Active() {
		return fmt.Errorf("cannot abort a %s rollout: %w", r.Status, ErrFinal)
	}
	r.Status = store.Aborted
	r.Reason = reason
	r.EndedAt = now
	r.HealthySince = time.Time{}
	return nil
}

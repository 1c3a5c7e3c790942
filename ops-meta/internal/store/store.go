// Package store keeps ops-meta's inventory (every host's last heartbeat)
// and rollout state, in memory or in MySQL. Both implementations satisfy
// Store and pass the same tests.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrExists is returned when creating a rollout whose id is taken.
var ErrExists = errors.New("already exists")

// ErrNotFound is returned for an unknown rollout.
var ErrNotFound = errors.New("not found")

// Host is the inventory entry of one host: its last heartbeat.
type Host struct {
	Name      string    `json:"hostname"`
	Addr      string    `json:"addr"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Agents    []Agent   `json:"agents"`
}

// Agent returns the named agent of the host.
func (h *Host) Agent(name string) (Agent, bool) {
	for _, a := range h.Agents {
		if a.Name == name {
			return a, true
		}
	}
	return Agent{}, false
}

// Agent is one real agent as last reported.
type Agent struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Status    string `json:"status"`
	Timestamp int64  `json:"timestamp"`
	Error     string `json:"error,omitempty"`
	Pending   string `json:"pending,omitempty"`
}

// Rollout statuses.
const (
	Running   = "running"
	Paused    = "paused"
	Completed = "completed"
	Halted    = "halted"
	Aborted   = "aborted"
)

// Rollout is a rollout's spec and state.
type Rollout struct {
	ID               string        `json:"id"`
	Agent            string        `json:"agent"`
	From             string        `json:"from"`
	To               string        `json:"to"`
	Waves            []float64     `json:"waves"`
	Soak             time.Duration `json:"soakNanos"`
	Deadline         time.Duration `json:"deadlineNanos"`
	FailureThreshold string        `json:"failureThreshold"`
	Source           string        `json:"source"` // "file" or "api"

	Status string `json:"status"`
	// Wave is the number of promoted (open) waves, 1..len(Waves).
	Wave int `json:"wave"`
	// WaveOpenedAt[i] is when wave i+1 was promoted.
	WaveOpenedAt []time.Time `json:"waveOpenedAt"`
	// HealthySince is when every host of the open waves was last seen to
	// become healthy (zero when one is not).
	HealthySince time.Time `json:"healthySince"`
	// ResumedAt restarts the deadlines after a pause.
	ResumedAt time.Time `json:"resumedAt"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	EndedAt   time.Time `json:"endedAt"`
	// Revision increases with every update (optimistic check).
	Revision int64 `json:"revision"`
}

// Active reports whether the rollout is running or paused.
func (r *Rollout) Active() bool { return r.Status == Running || r.Status == Paused }

// Store is the inventory and rollout store.
type Store interface {
	// RecordHeartbeat stores a host's heartbeat: it replaces the host's
	// agents, sets LastSeen, and sets FirstSeen on the first heartbeat.
	RecordHeartbeat(ctx context.Context, h Host) error
	// Hosts returns every host, sorted by name.
	Hosts(ctx context.Context) ([]Host, error)
	// Host returns one host.
	Host(ctx context.Context, name string) (Host, bool, error)

	// CreateRollout stores a new rollout (ErrExists if the id is taken).
	CreateRollout(ctx context.Context, r Rollout) error
	// Rollouts returns every rollout, oldest first.
	Rollouts(ctx context.Context) ([]Rollout, error)
	// Rollout returns one rollout (ErrNotFound).
	Rollout(ctx context.Context, id string) (Rollout, error)
	// UpdateRollout replaces a rollout's state.
	UpdateRollout(ctx context.Context, r Rollout) error

	// WithLock runs fn while holding the named lock, shared by every
	// ops-meta using this store (MySQL GET_LOCK; a mutex in memory).
	WithLock(ctx context.Context, name string, fn func(context.Context) error) error
	Close() error
}

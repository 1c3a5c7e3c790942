package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Memory is the in-memory Store.
type Memory struct {
	mu       sync.RWMutex
	hosts    map[string]Host
	rollouts map[string]Rollout
	order    []string
	lockMu   sync.Mutex
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{hosts: map[string]Host{}, rollouts: map[string]Rollout{}}
}

func cloneHost(h Host) Host {
	h.Agents = slices.Clone(h.Agents)
	return h
}

func cloneRollout(r Rollout) Rollout {
	r.Waves = slices.Clone(r.Waves)
	r.WaveOpenedAt = slices.Clone(r.WaveOpenedAt)
	return r
}

// RecordHeartbeat implements Store.
func (m *Memory) RecordHeartbeat(_ context.Context, h Host) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h = cloneHost(h)
	slices.SortFunc(h.Agents, func(a, b Agent) int { return strings.Compare(a.Name, b.Name) })
	if old, ok := m.hosts[h.Name]; ok {
		h.FirstSeen = old.FirstSeen
	} else {
		h.FirstSeen = h.LastSeen
	}
	m.hosts[h.Name] = h
	return nil
}

// Hosts implements Store.
func (m *Memory) Hosts(context.Context) ([]Host, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Host, 0, len(m.hosts))
	for _, h := range m.hosts {
		out = append(out, cloneHost(h))
	}
	slices.SortFunc(out, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Host implements Store.
func (m *Memory) Host(_ context.Context, name string) (Host, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h, ok := m.hosts[name]
	return cloneHost(h), ok, nil
}

// CreateRollout implements Store.
func (m *Memory) CreateRollout(_ context.Context, r Rollout) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rollouts[r.ID]; ok {
		return fmt.Errorf("rollout %q: %w", r.ID, ErrExists)
	}
	m.rollouts[r.ID] = cloneRollout(r)
	m.order = append(m.order, r.ID)
	return nil
}

// Rollouts implements Store.
func (m *Memory) Rollouts(context.Context) ([]Rollout, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Rollout, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, cloneRollout(m.rollouts[id]))
	}
	return out, nil
}

// Rollout implements Store.
func (m *Memory) Rollout(_ context.Context, id string) (Rollout, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.rollouts[id]
	if !ok {
		return Rollout{}, fmt.Errorf("rollout %q: %w", id, ErrNotFound)
	}
	return cloneRollout(r), nil
}

// UpdateRollout implements Store.
func (m *Memory) UpdateRollout(_ context.Context, r Rollout) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rollouts[r.ID]; !ok {
		return fmt.Errorf("rollout %q: %w", r.ID, ErrNotFound)
	}
	m.rollouts[r.ID] = cloneRollout(r)
	return nil
}

// WithLock implements Store (one lock for every name in memory).
func (m *Memory) WithLock(ctx context.Context, _ string, fn func(context.Context) error) error {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	return fn(ctx)
}

// Close implements Store.
func (m *Memory) Close() error { return nil }

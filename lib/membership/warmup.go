package membership

import (
	"context"
	"time"
)

// WarmUp returns how long Ready stays false after Run starts listening or
// after a reconnect: max(Timeout, 2 × the largest heartbeat interval a
// known judge announced), an announced interval counting at most Timeout
// (a judge beating more slowly cannot stay in the ring anyway).
func (m *Membership) WarmUp() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.warmUp()
}

func (m *Membership) warmUp() time.Duration {
	d := m.cfg.Timeout
	for _, st := range m.nodes {
		d = max(d, 2*min(st.interval, m.cfg.Timeout))
	}
	return d
}

// Ready reports whether the warm-up since Run started listening (or last
// reconnected) is over: every judge alive then has had time to heartbeat,
// so the ring is complete. It is false while the connection is down.
// Judges do not need it (they refuse points of partitions gained less than
// their settle period ago); a transfer routes only when it is true.
func (m *Membership) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ready
}

// WaitReady blocks until Ready is true or ctx ends.
func (m *Membership) WaitReady(ctx context.Context) error {
	for {
		ch := m.Changed()
		if m.Ready() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StartWarmUp starts a warm-up at now: Ready is false until an Expire at
// least WarmUp later ends it. Run calls it when it starts listening and at
// every reconnect; a membership driven by hand (tests, benchmarks) calls
// it itself (StartWarmUp(t0), then Expire(t0 + WarmUp()) to be ready).
func (m *Membership) StartWarmUp(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listenSince = now
	m.deaf = false
	if m.ready {
		m.ready = false
		m.signal()
	}
	m.log.Info("membership warming up: the ring is complete once every live judge had time to heartbeat",
		"warm_up", m.warmUp(), "members", m.Ring().Len())
}

// deafen: the connection is down. Nothing is heard, so nothing is timed
// out and Ready is false until the reconnect's warm-up is over.
func (m *Membership) deafen() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deaf {
		return
	}
	m.deaf = true
	if m.ready {
		m.ready = false
		m.signal()
	}
	m.log.Warn("nats connection lost: membership hears nobody; no judge is timed out until the reconnect and a warm-up",
		"members", m.Ring().Len())
}

// readyDue returns when the warm-up in progress ends (false: none).
func (m *Membership) readyDue() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready || m.deaf || m.listenSince.IsZero() {
		return time.Time{}, false
	}
	return m.listenSince.Add(m.warmUp()), true
}

// checkReady ends the warm-up when due; m.mu held.
func (m *Membership) checkReady(now time.Time) {
	if m.ready || m.deaf || m.listenSince.IsZero() {
		return
	}
	d := m.warmUp()
	if now.Sub(m.listenSince) < d {
		return
	}
	m.ready = true
	m.signal()
	m.log.Info("membership warm-up over: ring complete", "members", m.Ring().Len(), "warm_up", d)
}

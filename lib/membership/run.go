package membership

import (
	"context"
	"fmt"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

// Run subscribes to the members subject, expires silent judges, follows
// the connection (a warm-up after the start and after every reconnect; no
// timeouts while it is down) and publishes an evict message for every
// judge this membership takes out for a local reason, until ctx ends.
func (m *Membership) Run(ctx context.Context, nc *nats.Conn, subject string) error {
	// Listen first, so no status change after the check below is missed.
	status := nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(status)
	sub, err := nc.Subscribe(subject, func(msg *nats.Msg) { m.HandleData(msg.Data, time.Now()) })
	if err != nil {
		return fmt.Errorf("cannot subscribe to %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	pending := m.cfg.PendingMsgs
	if pending <= 0 {
		pending = DefaultPendingMsgs
	}
	if err := sub.SetPendingLimits(pending, pending*1024); err != nil {
		return fmt.Errorf("cannot set pending limits on %s: %w", subject, err)
	}
	var dropped int
	m.setPublishing(true)
	defer m.setPublishing(false)
	// The warm-up counts from when the server knows the subscription.
	// While not connected (yet) it starts at the connection instead; the
	// flush is bounded by ctx, so a stop while NATS is down is not held.
	if m.flush(ctx, nc) == nil {
		m.StartWarmUp(time.Now())
	} else {
		m.deafen()
	}
	tick := m.cfg.Timeout / 4
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	warm := time.NewTimer(time.Hour)
	defer warm.Stop()
	for {
		var warmC <-chan time.Time
		if due, ok := m.readyDue(); ok {
			warm.Reset(max(time.Until(due), 0))
			warmC = warm.C
		}
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			m.Expire(now)
		case <-warmC:
			m.Expire(time.Now())
		case s := <-status:
			if s == nats.CONNECTED {
				m.StartWarmUp(time.Now())
			} else {
				m.deafen()
			}
		case <-m.kick:
		}
		if n, err := sub.Dropped(); err == nil && n > dropped {
			m.lost(n-dropped, time.Now())
			dropped = n
		}
		m.publishEvicts(nc, subject)
	}
}

// flush makes sure the server knows the subscription: an error when not
// connected, ctx ends, or no answer within 5 s.
func (m *Membership) flush(ctx context.Context, nc *nats.Conn) error {
	if !nc.IsConnected() {
		return nats.ErrConnectionReconnecting
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return nc.FlushWithContext(ctx)
}

// lost handles n member messages the client dropped (a slow consumer):
// one of them may have been an evict or a leave, so the ring may hold a
// judge the others took out. The membership warms up again as after a
// reconnect (a transfer parks its points, a judge owns nothing and reads
// every state again afterwards).
func (m *Membership) lost(n int, now time.Time) {
	m.met.MemberMsgsDropped.WithLabelValues(DropSlowConsumer).Add(float64(n))
	m.log.Warn("member messages lost (slow consumer): warming up again", "lost", n)
	m.StartWarmUp(now)
}

func (m *Membership) setPublishing(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.publishing = on
	if !on {
		clear(m.outbox)
	}
}

// takeEvicts empties the outbox.
func (m *Membership) takeEvicts() []proto.MemberMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.outbox) == 0 {
		return nil
	}
	out := make([]proto.MemberMsg, 0, len(m.outbox))
	for _, msg := range m.outbox {
		out = append(out, msg)
	}
	clear(m.outbox)
	return out
}

// publishEvicts sends the queued evict messages. A failed publish is
// counted and logged (rate-limited); it is not retried: the other
// observers still take the judge out on their own timeout. While the
// connection is down nothing is sent (the client would buffer the evicts
// and send views this process formed while hearing nobody).
func (m *Membership) publishEvicts(nc *nats.Conn, subject string) {
	for _, msg := range m.takeEvicts() {
		err := nats.ErrConnectionReconnecting
		if nc.IsConnected() {
			err = nc.Publish(subject, msg.Encode())
		}
		if err != nil {
			m.met.EvictsPublished.WithLabelValues(PublishError).Inc()
			if ok, n := m.rl.Allow("evict_publish"); ok {
				m.log.Warn("cannot publish evict message", "node", msg.Node, "reason", msg.Reason, "err", err, "suppressed", n)
			}
			continue
		}
		m.met.EvictsPublished.WithLabelValues(PublishOK).Inc()
		m.log.Info("evict published", "node", msg.Node, "incarnation", msg.Incarnation, "reason", msg.Reason)
	}
}

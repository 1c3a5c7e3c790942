// Package membership tracks which judges are alive and keeps the ring over
// them. Transfers and judges both run it over the members subject, with the
// same parameters, and so compute the same ring.
//
// A judge joins on a heartbeat; it leaves at once on a "leave" message, on
// missing heartbeats for Timeout, on a "no responders" answer, or after
// SuspectAfter consecutive request timeouts. Once out, it is re-admitted by
// a heartbeat only after RejoinHold, so a flapping judge does not move
// series back and forth.
//
// Evictions are shared: when this process takes a judge out for a local
// reason (heartbeat timeout, no responders, suspect), Run publishes an
// "evict" message on the members subject naming the judge, the incarnation
// it knew and the reason. Every other membership that receives it takes
// the judge out too (reason "evicted", same rejoin hold), so all views
// agree within one message delivery instead of disagreeing for a whole
// rejoin hold. An evict about an older incarnation than the one known is
// stale and ignored; a received leave or evict is never re-published.
//
// A judge that is out of the ring and has sent no message at all for
// PruneAfter (max(1m, 10 × max(Timeout, RejoinHold))) is forgotten, so
// entries of departed node ids (a judge restarted under a new hostname)
// do not accumulate. Until then its entry keeps the rejoin hold and the
// stale-incarnation check; any message, even a stale one, keeps it.
//
// The ring is an immutable snapshot rebuilt on every change and swapped
// atomically; readers never lock.
package membership

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

// Config configures a Membership.
type Config struct {
	Timeout      time.Duration // a judge without heartbeats this long leaves
	RejoinHold   time.Duration // a judge that left is re-admitted only after this
	SuspectAfter int           // consecutive request timeouts that take a judge out (> 0)
	Ring         ring.Config
	// Self names this observer in the evict messages it publishes (their
	// By field), e.g. a transfer's host and pid or a judge's node id.
	Self string
}

// PruneAfter returns how long a departed judge's entry is kept after its
// last message: max(1m, 10 × max(timeout, rejoinHold)).
func PruneAfter(timeout, rejoinHold time.Duration) time.Duration {
	return max(time.Minute, 10*max(timeout, rejoinHold))
}

type node struct {
	alive       bool
	lastBeat    time.Time
	lastSeen    time.Time // last message of any kind, stale ones included
	leftAt      time.Time
	incarnation int64
	timeouts    int
}

// Membership is safe for concurrent use.
type Membership struct {
	cfg        Config
	pruneAfter time.Duration
	log        *slog.Logger
	rl         *ratelog.Limiter
	met        *Metrics

	mu      sync.Mutex
	nodes   map[string]*node
	changed chan struct{}
	// outbox holds the evicts to publish, at most one per node; filled
	// only while Run publishes.
	outbox     map[string]proto.MemberMsg
	publishing bool
	kick       chan struct{} // cap 1: outbox not empty

	ring atomic.Pointer[ring.Ring]
}

// New returns a Membership with an empty ring. met may be nil (metrics
// kept but not registered).
func New(cfg Config, log *slog.Logger, met *Metrics) (*Membership, error) {
	r, err := ring.New(nil, cfg.Ring)
	if err != nil {
		return nil, err
	}
	cfg.Ring = r.Config()
	if cfg.SuspectAfter <= 0 {
		return nil, fmt.Errorf("membership: suspect_after must be > 0")
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("membership: timeout must be > 0")
	}
	if cfg.RejoinHold < 0 {
		return nil, fmt.Errorf("membership: rejoin_hold must be >= 0")
	}
	if met == nil {
		met = NewMetrics(nil, "membership")
	}
	m := &Membership{cfg: cfg, pruneAfter: PruneAfter(cfg.Timeout, cfg.RejoinHold), log: log, rl: ratelog.New(10 * time.Second),
		met: met, nodes: make(map[string]*node), changed: make(chan struct{}),
		outbox: make(map[string]proto.MemberMsg), kick: make(chan struct{}, 1)}
	m.ring.Store(r)
	// Every transfer and judge must use the same ring shape: export it so
	// operators can alert when they disagree.
	met.setRingConfig(cfg.Ring.PartitionCount, cfg.Ring.ReplicationFactor, cfg.Ring.Load)
	log.Info("ring config (must be identical on every transfer and judge)", "partition_count", cfg.Ring.PartitionCount,
		"replication_factor", cfg.Ring.ReplicationFactor, "load", cfg.Ring.Load, "hasher", cfg.Ring.Hasher,
		"timeout", cfg.Timeout, "rejoin_hold", cfg.RejoinHold)
	return m, nil
}

// Metrics returns the metrics the membership updates.
func (m *Membership) Metrics() *Metrics { return m.met }

// Ring returns the current ring snapshot (never nil).
func (m *Membership) Ring() *ring.Ring { return m.ring.Load() }

// Changed returns a channel closed at the next ring change.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// WaitAlive blocks until the ring has at least one member or ctx ends.
func (m *Membership) WaitAlive(ctx context.Context) error {
	for {
		ch := m.Changed()
		if m.Ring().Len() > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// rebuild swaps in a ring over the alive nodes; m.mu held.
func (m *Membership) rebuild() {
	names := make([]string, 0, len(m.nodes))
	for n, st := range m.nodes {
		if st.alive {
			names = append(names, n)
		}
	}
	r, err := ring.New(names, m.cfg.Ring)
	if err != nil {
		// The config was validated; this cannot happen. Keep the old ring.
		m.log.Error("cannot build ring", "err", err)
		return
	}
	m.ring.Store(r)
	m.met.RingMembers.Set(float64(r.Len()))
	close(m.changed)
	m.changed = make(chan struct{})
}

// local reports whether reason is this process's own observation (and so
// is published as an evict).
func local(reason string) bool {
	return reason == ChangeTimeout || reason == ChangeNoResponders || reason == ChangeSuspect
}

// leave takes node out of the ring; m.mu held. For a local reason, an
// evict message is queued for Run to publish.
func (m *Membership) leave(name string, st *node, now time.Time, reason string, attrs ...any) {
	if !st.alive {
		return
	}
	st.alive = false
	st.leftAt = now
	st.timeouts = 0
	m.met.MembershipChanges.WithLabelValues(reason).Inc()
	m.rebuild()
	if local(reason) && m.publishing {
		m.outbox[name] = proto.MemberMsg{Node: name, Kind: proto.MemberEvict, Incarnation: st.incarnation, By: m.cfg.Self, Reason: reason}
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	m.log.Warn("judge left the ring", append([]any{"node", name, "reason", reason, "members", m.Ring().Len()}, attrs...)...)
}

// Handle applies one member message received at now.
func (m *Membership) Handle(msg proto.MemberMsg, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.nodes[msg.Node]
	if msg.Kind == proto.MemberEvict {
		m.evicted(msg, st, now)
		return
	}
	if st == nil {
		if msg.Kind == proto.MemberLeave {
			return
		}
		st = &node{}
		m.nodes[msg.Node] = st
	}
	st.lastSeen = now
	if msg.Incarnation < st.incarnation {
		m.met.MemberMsgsDropped.WithLabelValues(DropStaleMsg).Inc()
		return // from a process that has since restarted
	}
	st.incarnation = msg.Incarnation
	switch msg.Kind {
	case proto.MemberLeave:
		m.leave(msg.Node, st, now, ChangeLeave)
	case proto.MemberBeat:
		st.lastBeat = now
		if st.alive {
			return
		}
		if !st.leftAt.IsZero() && now.Sub(st.leftAt) < m.cfg.RejoinHold {
			return // still in its rejoin hold
		}
		st.alive = true
		st.timeouts = 0
		m.met.MembershipChanges.WithLabelValues(ChangeJoin).Inc()
		m.rebuild()
		m.log.Info("judge joined the ring", "node", msg.Node, "members", m.Ring().Len())
	}
}

// evicted applies an evict message from another observer; m.mu held. The
// judge is taken out when the incarnation this membership knows is not
// newer than the message's; the message is not the judge's own, so it
// neither creates an entry nor keeps one from being forgotten.
func (m *Membership) evicted(msg proto.MemberMsg, st *node, now time.Time) {
	if st == nil {
		return // never heard of it: nothing to take out
	}
	if msg.Incarnation < st.incarnation {
		m.met.MemberMsgsDropped.WithLabelValues(DropStaleMsg).Inc()
		return // about a process that has since restarted
	}
	st.incarnation = msg.Incarnation
	m.leave(msg.Node, st, now, ChangeEvicted, "by", msg.By, "by_reason", msg.Reason)
}

// Expire removes judges whose last heartbeat is older than Timeout, and
// forgets judges out of the ring that sent nothing for PruneAfter.
func (m *Membership) Expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, st := range m.nodes {
		if st.alive && now.Sub(st.lastBeat) >= m.cfg.Timeout {
			m.leave(name, st, now, ChangeTimeout)
		}
	}
	for name, st := range m.nodes {
		if !st.alive && now.Sub(st.lastSeen) >= m.pruneAfter && now.Sub(st.leftAt) >= m.pruneAfter {
			delete(m.nodes, name)
			m.log.Info("forgot departed judge", "node", name, "silent_for", now.Sub(st.lastSeen).Round(time.Second))
		}
	}
}

// Known returns how many judges membership tracks (in the ring or not yet
// forgotten).
func (m *Membership) Known() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.nodes)
}

// NoResponders takes node out at once: nobody serves its subject.
func (m *Membership) NoResponders(name string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.nodes[name]; st != nil {
		m.leave(name, st, now, ChangeNoResponders)
	}
}

// RequestTimeout counts a timeout of a request to node; after SuspectAfter
// consecutive ones the node is suspect and leaves the ring. It reports
// whether the node left.
func (m *Membership) RequestTimeout(name string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.nodes[name]
	if st == nil || !st.alive {
		return false
	}
	st.timeouts++
	if st.timeouts >= m.cfg.SuspectAfter {
		m.leave(name, st, now, ChangeSuspect)
		return true
	}
	return false
}

// RequestOK resets node's consecutive timeouts.
func (m *Membership) RequestOK(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.nodes[name]; st != nil {
		st.timeouts = 0
	}
}

// HandleData decodes and applies one raw member message; a message that
// does not decode is counted and logged (at most once per 10 s).
func (m *Membership) HandleData(data []byte, now time.Time) {
	mm, err := proto.DecodeMemberMsg(data)
	if err != nil {
		m.met.MemberMsgsDropped.WithLabelValues(DropBadMsg).Inc()
		if n, ok := m.rl.Allow(DropBadMsg); ok {
			m.log.Warn("bad member message dropped", "err", err, "bytes", len(data), "suppressed", n)
		}
		return
	}
	m.Handle(mm, now)
}

// Run subscribes to the members subject, expires silent judges and
// publishes an evict message for every judge this membership takes out for
// a local reason, until ctx ends.
func (m *Membership) Run(ctx context.Context, nc *nats.Conn, subject string) error {
	sub, err := nc.Subscribe(subject, func(msg *nats.Msg) { m.HandleData(msg.Data, time.Now()) })
	if err != nil {
		return fmt.Errorf("cannot subscribe to %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	m.setPublishing(true)
	defer m.setPublishing(false)
	tick := m.cfg.Timeout / 4
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			m.Expire(now)
		case <-m.kick:
		}
		m.publishEvicts(nc, subject)
	}
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
// observers still take the judge out on their own timeout.
func (m *Membership) publishEvicts(nc *nats.Conn, subject string) {
	for _, msg := range m.takeEvicts() {
		if err := nc.Publish(subject, msg.Encode()); err != nil {
			m.met.EvictsPublished.WithLabelValues(PublishError).Inc()
			if n, ok := m.rl.Allow("evict_publish"); ok {
				m.log.Warn("cannot publish evict message", "node", msg.Node, "reason", msg.Reason, "err", err, "suppressed", n)
			}
			continue
		}
		m.met.EvictsPublished.WithLabelValues(PublishOK).Inc()
		m.log.Info("evict published", "node", msg.Node, "incarnation", msg.Incarnation, "reason", msg.Reason)
	}
}

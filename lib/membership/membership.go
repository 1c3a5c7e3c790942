// Package membership tracks which judges are alive and keeps the ring over
// them. Transfers and judges both run it over the members subject, with the
// same parameters, and so compute the same ring.
//
// A judge joins on a heartbeat; it leaves at once on a "leave" message, on
// missing heartbeats for Timeout, on a "no responders" answer, or when its
// requests keep timing out: SuspectAfter consecutive timeouts spanning
// UnresponsiveAfter with no successful reply. A judge that still heartbeats
// but answers slowly is not taken out for a few timeouts (the caller slows
// down instead). Once out, it is re-admitted by a heartbeat only after
// RejoinHold, so a flapping judge does not move series back and forth.
//
// Incarnations. Each judge process stamps its messages with its
// incarnation (its start time). A message of another incarnation than the
// one known replaces it when it is newer (a restart), or — whatever the
// clocks say — when the known incarnation has left or has been silent for
// Timeout (a restart on a host whose clock is behind); a heartbeat of it
// seen while the known incarnation is still in its timeout is remembered,
// so the restarted judge takes the old one's place when that times out,
// without leaving the ring. An incarnation once replaced stays stale. Two
// processes heartbeating under one node id at the same time are logged at
// Error and counted (member_messages_dropped_total{reason="duplicate_node"});
// the one known keeps the ring position.
//
// Evictions are shared: when this process takes a judge out for a local
// reason (heartbeat timeout, no responders, suspect), Run publishes an
// "evict" message on the members subject naming the judge, the incarnation
// it knew and the reason. Every other membership that receives it takes
// the judge out too (reason "evicted", same rejoin hold), so all views
// agree within one message delivery instead of disagreeing for a whole
// rejoin hold. An evict about a replaced incarnation is stale and ignored;
// a received leave or evict is never re-published.
//
// Warm-up. Right after Run starts listening, and after every NATS
// reconnect, the ring holds only the judges heard so far. Ready reports
// false until max(Timeout, 2 × the largest heartbeat interval announced)
// has passed, so a caller that routes (the transfer) can wait for every
// live judge to be heard. While the connection is down, nothing is timed
// out or published: this process hears nobody, which says nothing about
// the judges; timeouts count again from the reconnect.
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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
)

// DefaultUnresponsiveAfter is Config.UnresponsiveAfter when left zero.
const DefaultUnresponsiveAfter = 30 * time.Second

// Config configures a Membership.
type Config struct {
	Timeout      time.Duration // a judge without heartbeats this long leaves
	RejoinHold   time.Duration // a judge that left is re-admitted only after this
	SuspectAfter int           // consecutive request timeouts before a judge can be suspect (> 0)
	// UnresponsiveAfter: a judge whose requests time out is suspect (taken
	// out) only when they have kept timing out, with no successful reply,
	// for this long (from the first timeout after its last successful
	// reply: an idle judge is not unresponsive for the time it was idle);
	// 0 means DefaultUnresponsiveAfter.
	UnresponsiveAfter time.Duration
	Ring              ring.Config
	// Self names this observer in the evict messages it publishes (their
	// By field), e.g. a transfer's host and pid or a judge's node id.
	Self string
	// PendingMsgs bounds the member messages the NATS client queues for
	// this membership (0: DefaultPendingMsgs). When it overflows, messages
	// are lost: the membership counts them and warms up again.
	PendingMsgs int
}

// DefaultPendingMsgs is Config.PendingMsgs when left zero: member messages
// are ~100 bytes, so this is a few MiB at most.
const DefaultPendingMsgs = 1 << 16

// PruneAfter returns how long a departed judge's entry is kept after its
// last message: max(1m, 10 × max(timeout, rejoinHold)).
func PruneAfter(timeout, rejoinHold time.Duration) time.Duration {
	return max(time.Minute, 10*max(timeout, rejoinHold))
}

// retiredKept is how many replaced incarnations a node remembers.
const retiredKept = 4

type node struct {
	alive       bool
	incarnation int64
	lastBeat    time.Time     // last beat of the known incarnation
	lastSeen    time.Time     // last message of any kind, stale ones included
	leftAt      time.Time     // when it last left the ring
	gone        bool          // the known incarnation sent a leave
	interval    time.Duration // heartbeat interval the known incarnation announced
	timeouts    int           // consecutive request timeouts
	timingOut   time.Time     // the first of them
	retired     []int64       // incarnations replaced by a later process (stale), newest last

	// Another, not (yet) adopted incarnation heartbeating under this node
	// id: a restarted judge whose clock is behind, or a second process.
	rival      int64
	rivalSince time.Time // its first beat seen
	rivalLast  time.Time // its last beat seen
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

	// Warm-up (warmup.go).
	listenSince time.Time // Run started listening or reconnected; zero: never
	deaf        bool      // the connection is down: nothing heard, nothing timed out
	ready       bool

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
	if cfg.UnresponsiveAfter < 0 {
		return nil, fmt.Errorf("membership: unresponsive_after must be >= 0")
	}
	if cfg.UnresponsiveAfter == 0 {
		cfg.UnresponsiveAfter = DefaultUnresponsiveAfter
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

// Changed returns a channel closed at the next change of the ring or of
// Ready.
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

// signal wakes every Changed waiter; m.mu held.
func (m *Membership) signal() {
	close(m.changed)
	m.changed = make(chan struct{})
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
	m.signal()
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
	// A leave is a judge stopping on purpose; a timeout, no responders,
	// a suspect or an evict is a failure someone should look at.
	level := slog.LevelWarn
	if reason == ChangeLeave {
		level = slog.LevelInfo
	}
	m.log.Log(context.Background(), level, "judge left the ring", append([]any{"node", name, "reason", reason, "members", m.Ring().Len()}, attrs...)...)
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
		st = &node{incarnation: msg.Incarnation}
		m.nodes[msg.Node] = st
	}
	st.lastSeen = now
	if msg.Incarnation != st.incarnation {
		if !m.replaces(st, msg.Incarnation, now) {
			m.stale(msg, st, now)
			return
		}
		m.adopt(msg.Node, st, msg.Incarnation, now)
	}
	switch msg.Kind {
	case proto.MemberLeave:
		st.gone = true
		m.leave(msg.Node, st, now, ChangeLeave)
	case proto.MemberBeat:
		st.lastBeat = now
		st.gone = false
		st.interval = time.Duration(max(msg.IntervalMS, 0)) * time.Millisecond
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
		m.log.Info("judge joined the ring", "node", msg.Node, "incarnation", st.incarnation, "members", m.Ring().Len())
	}
}

// evicted applies an evict message from another observer; m.mu held. The
// judge is taken out when the message is about the known incarnation or
// one that replaces it; the message is not the judge's own, so it neither
// creates an entry nor keeps one from being forgotten.
func (m *Membership) evicted(msg proto.MemberMsg, st *node, now time.Time) {
	if st == nil {
		return // never heard of it: nothing to take out
	}
	if msg.Incarnation != st.incarnation {
		if !m.replaces(st, msg.Incarnation, now) {
			m.met.MemberMsgsDropped.WithLabelValues(DropStaleMsg).Inc()
			return // about a process that has since been replaced
		}
		m.adopt(msg.Node, st, msg.Incarnation, now)
	}
	m.leave(msg.Node, st, now, ChangeEvicted, "by", msg.By, "by_reason", msg.Reason)
}

// Expire removes judges not heard beating for Timeout (none while the
// connection is down; counting from the reconnect after it), forgets judges
// out of the ring that sent nothing for PruneAfter, and ends the warm-up
// when it is due.
func (m *Membership) Expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checkReady(now)
	if m.deaf {
		return
	}
	for name, st := range m.nodes {
		if !st.alive || now.Sub(m.heardSince(st)) < m.cfg.Timeout {
			continue
		}
		if st.rival != 0 && now.Sub(st.rivalLast) < m.cfg.Timeout && !slices.Contains(st.retired, st.rival) {
			// The known incarnation fell silent while another one beats:
			// a restart whose clock is behind. It takes the place.
			m.adopt(name, st, st.rival, now)
			continue
		}
		m.leave(name, st, now, ChangeTimeout)
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

// Incarnation returns the incarnation known for node (false when unknown).
func (m *Membership) Incarnation(name string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.nodes[name]
	if st == nil {
		return 0, false
	}
	return st.incarnation, true
}

// HandleData decodes and applies one raw member message; a message that
// does not decode is counted and logged (at most once per 10 s).
func (m *Membership) HandleData(data []byte, now time.Time) {
	mm, err := proto.DecodeMemberMsg(data)
	if err != nil {
		m.met.MemberMsgsDropped.WithLabelValues(DropBadMsg).Inc()
		if ok, n := m.rl.Allow(DropBadMsg); ok {
			m.log.Warn("bad member message dropped", "err", err, "bytes", len(data), "suppressed", n)
		}
		return
	}
	m.Handle(mm, now)
}

package membership

import (
	"slices"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// heardSince returns when this membership last heard st's known
// incarnation beat, counting from the last (re)connect: beats missed
// while the connection was down say nothing about the judge.
func (m *Membership) heardSince(st *node) time.Time {
	if st.lastBeat.Before(m.listenSince) {
		return m.listenSince
	}
	return st.lastBeat
}

// replaces reports whether incarnation inc of st's node replaces the known
// one: it was never replaced itself, and it is newer, or the known
// incarnation left or has been silent for Timeout (a restart on a host
// whose clock is behind). m.mu held.
func (m *Membership) replaces(st *node, inc int64, now time.Time) bool {
	if slices.Contains(st.retired, inc) {
		return false
	}
	if inc > st.incarnation || st.gone {
		return true
	}
	return !m.deaf && now.Sub(m.heardSince(st)) >= m.cfg.Timeout
}

// adopt makes inc the known incarnation of st's node and retires the old
// one (its messages are stale from now on). An alive node stays in the
// ring: the restarted judge serves the same subject. m.mu held.
func (m *Membership) adopt(name string, st *node, inc int64, now time.Time) {
	old := st.incarnation
	st.retired = append(st.retired, old)
	if len(st.retired) > retiredKept {
		st.retired = slices.Delete(st.retired, 0, len(st.retired)-retiredKept)
	}
	st.incarnation = inc
	st.gone = false
	st.timeouts = 0
	if st.rival == inc {
		st.lastBeat = st.rivalLast
	}
	st.rival, st.rivalSince, st.rivalLast = 0, time.Time{}, time.Time{}
	if inc < old {
		m.log.Warn("judge restarted with a lower incarnation (its clock is behind): the new process replaces the old one",
			"node", name, "incarnation", inc, "old_incarnation", old, "in_ring", st.alive)
	}
}

// stale drops a message of an incarnation that does not replace the known
// one. A beat of it while the known incarnation also beats means two
// processes under one node id: logged at Error (rate-limited per node) and
// counted. A beat of an incarnation never replaced is remembered: it takes
// the known one's place when that times out (see Expire). m.mu held.
func (m *Membership) stale(msg proto.MemberMsg, st *node, now time.Time) {
	if msg.Kind != proto.MemberBeat {
		m.met.MemberMsgsDropped.WithLabelValues(DropStaleMsg).Inc()
		return
	}
	if st.rival != msg.Incarnation {
		st.rival, st.rivalSince = msg.Incarnation, now
	}
	st.rivalLast = now
	if !st.lastBeat.After(st.rivalSince) {
		// The known incarnation has not beaten since this one started: a
		// restart (or a late message of a process that has stopped).
		m.met.MemberMsgsDropped.WithLabelValues(DropStaleMsg).Inc()
		return
	}
	m.met.MemberMsgsDropped.WithLabelValues(DropDuplicateNode).Inc()
	if ok, n := m.rl.Allow("duplicate_node:" + msg.Node); ok {
		m.log.Error("two processes heartbeat under one node id: the one known keeps the ring position, stop the other",
			"node", msg.Node, "incarnation", st.incarnation, "other_incarnation", msg.Incarnation,
			"other_replaced", slices.Contains(st.retired, msg.Incarnation), "suppressed", n)
	}
}

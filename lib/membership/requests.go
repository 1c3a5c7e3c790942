package membership

import "time"

// What a caller that sends requests to judges (the transfer) reports
// about them.

// NoResponders takes node out at once: nobody serves its subject.
func (m *Membership) NoResponders(name string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.nodes[name]; st != nil {
		m.leave(name, st, now, ChangeNoResponders)
	}
}

// RequestTimeout counts a timeout of a request to node. The node is
// suspect and leaves the ring after SuspectAfter consecutive timeouts that
// span UnresponsiveAfter (from the first of them; a successful reply
// starts the count again); a judge that heartbeats and answers late is not
// taken out before that (the caller slows down instead). It reports
// whether the node left.
func (m *Membership) RequestTimeout(name string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.nodes[name]
	if st == nil || !st.alive || m.deaf {
		return false // while the connection is down, timeouts are not the judge's
	}
	if st.timeouts == 0 {
		st.timingOut = now
	}
	st.timeouts++
	span := now.Sub(st.timingOut)
	if st.timeouts >= m.cfg.SuspectAfter && span >= m.cfg.UnresponsiveAfter {
		m.leave(name, st, now, ChangeSuspect, "timeouts", st.timeouts, "timing_out_for", span.Round(time.Millisecond))
		return true
	}
	return false
}

// RequestOK resets node's consecutive timeouts: it answered.
func (m *Membership) RequestOK(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.nodes[name]; st != nil {
		st.timeouts = 0
	}
}

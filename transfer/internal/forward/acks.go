package forward

import (
	"time"
)

// pointDone counts one accepted point; the message is acked at zero.
func (e *Engine) pointDone(r ref) {
	m := r.m
	m.outstanding--
	e.pending--
	if m.outstanding > 0 {
		return
	}
	e.unlink(m)
	e.ack(m)
	e.freeMsg(m)
}

func (e *Engine) ack(m *inMsg) {
	if err := m.msg.Ack(); err != nil {
		e.msgOpFailed(OpAck, err)
		return
	}
	e.met.MessagesAcked.Inc()
}

// msgOpFailed counts a failed Ack/Nak/Term/InProgress and logs it at most
// once per 10 s per op. JetStream redelivers such a message after ack_wait
// (at-least-once), so nothing is lost, but the judge may see it twice.
func (e *Engine) msgOpFailed(op string, err error) {
	e.met.MsgOpError[op].Inc()
	if ok, n := e.rl.Allow("msg_op:" + op); ok {
		e.log.Warn("message operation failed: jetstream redelivers the message after ack_wait", "op", op, "err", err, "suppressed", n)
	}
}

// markProgress tells JetStream that messages still waiting on judges are
// being worked on, so they are not redelivered after ack_wait.
func (e *Engine) markProgress(now time.Time) {
	for m := e.head; m != nil; m = m.next {
		if now.Sub(m.lastMark) < e.cfg.InProgressEvery {
			continue
		}
		m.lastMark = now
		if err := m.msg.InProgress(); err != nil {
			e.msgOpFailed(OpInProgress, err)
			continue
		}
		e.met.ProgressMarks.Inc()
	}
}

// Held-message list and pools (loop goroutine only).

func (e *Engine) link(m *inMsg) {
	m.prev, m.next = e.tail, nil
	if e.tail != nil {
		e.tail.next = m
	} else {
		e.head = m
	}
	e.tail = m
	e.held++
}

func (e *Engine) unlink(m *inMsg) {
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		e.head = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		e.tail = m.prev
	}
	m.prev, m.next = nil, nil
	e.held--
}

func (e *Engine) newMsg(msg Msg) *inMsg {
	if n := len(e.freeMsgs); n > 0 {
		m := e.freeMsgs[n-1]
		e.freeMsgs = e.freeMsgs[:n-1]
		m.msg = msg
		return m
	}
	return &inMsg{msg: msg}
}

func (e *Engine) freeMsg(m *inMsg) {
	m.msg = nil
	clear(m.points) // drop string references
	m.points = m.points[:0]
	clear(m.tags)
	m.tags = m.tags[:0]
	m.outstanding = 0
	m.fails = nil
	e.freeMsgs = append(e.freeMsgs, m)
}

func (e *Engine) newBatch(js *judgeQueue) *batch {
	var b *batch
	if n := len(e.freeBatches); n > 0 {
		b = e.freeBatches[n-1]
		e.freeBatches = e.freeBatches[:n-1]
	} else {
		b = &batch{}
	}
	b.js = js
	return b
}

func (e *Engine) freeBatch(b *batch) {
	b.js = nil
	b.enc.Reset()
	clear(b.refs)
	b.refs = b.refs[:0]
	b.err = nil
	b.dur = 0
	e.freeBatches = append(e.freeBatches, b)
}

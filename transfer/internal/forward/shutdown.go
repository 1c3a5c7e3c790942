package forward

import (
	"time"
)

// shutdown stops in order: the fetch loop has stopped; messages fetched
// and not handled are handed back, queued points are flushed to their
// judges, in-flight requests (and dead-letter publications) are waited for
// at most ShutdownTimeout while held messages keep being marked, and every
// message still unacknowledged is handed back (Nak) for redelivery.
func (e *Engine) shutdown() {
	start := time.Now()
	e.stopping = true
	naked := 0
	for {
		select {
		case m := <-e.in:
			if err := m.Nak(); err != nil {
				e.msgOpFailed(OpNak, err)
			} else {
				naked++
			}
			continue
		default:
		}
		break
	}
	e.pump(start)
	e.log.Info("fetching stopped; waiting for judge requests", "inflight", e.inflight, "held_messages", e.held, "timeout", e.cfg.ShutdownTimeout)
	deadline := time.NewTimer(e.cfg.ShutdownTimeout)
	defer deadline.Stop()
	// Keep marking: shutdown_timeout may exceed ack_wait, and a message
	// redelivered meanwhile would be judged twice.
	marks := time.NewTicker(max(e.cfg.InProgressEvery/4, 10*time.Millisecond))
	defer marks.Stop()
wait:
	for e.inflight > 0 || e.dlInflight > 0 {
		select {
		case b := <-e.results:
			e.complete(b, time.Now())
		case d := <-e.dlResults:
			e.deadLettered(d, time.Now())
		case now := <-marks.C:
			e.markProgress(now)
		case <-deadline.C:
			break wait
		}
	}
	for m := e.head; m != nil; m = m.next {
		if err := m.msg.Nak(); err != nil {
			e.msgOpFailed(OpNak, err)
		} else {
			naked++
		}
	}
	e.met.MessagesNaked.WithLabelValues(NakShutdown).Add(float64(naked))
	if naked > 0 || e.inflight > 0 {
		e.log.Warn("stopping with unacknowledged messages: handed back (nak), jetstream redelivers them",
			"messages", naked, "abandoned_requests", e.inflight)
	}
	e.log.Info("forwarding stopped", "took", time.Since(start))
}

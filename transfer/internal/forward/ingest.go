package forward

import (
	"slices"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// handle decodes one ingest message and routes its valid points.
func (e *Engine) handle(msg Msg, now time.Time) {
	e.met.MessagesReceived.Inc()
	pts, err := e.dec.Decode(msg.Data())
	if err != nil {
		if proto.IsVersionError(err) {
			if err := msg.NakWithDelay(e.cfg.NakDelay); err != nil {
				e.msgOpFailed(OpNak, err)
			} else {
				e.met.MessagesNaked.WithLabelValues(NakVersion).Inc()
			}
			if ok, n := e.rl.Allow("version"); ok {
				e.log.Warn("batch from a newer codec: nak for redelivery to an upgraded transfer", "err", err, "delay", e.cfg.NakDelay, "suppressed", n)
			}
			return
		}
		if err := msg.Term(); err != nil {
			e.msgOpFailed(OpTerm, err)
		} else {
			e.met.MessagesTerminated.WithLabelValues(TermMalformed).Inc()
		}
		if ok, n := e.rl.Allow("malformed"); ok {
			e.log.Warn("malformed batch terminated", "err", err, "suppressed", n)
		}
		return
	}
	e.met.PointsReceived.Add(float64(len(pts)))
	m := e.newMsg(msg)
	ntags := 0
	for i := range pts {
		ntags += len(pts[i].Tags)
	}
	// Grow once so the appends below never move earlier points' tags.
	m.tags = slices.Grow(m.tags[:0], ntags)
	m.points = m.points[:0]
	unix := now.Unix()
	for i := range pts {
		p := &pts[i]
		if r := proto.ValidatePoint(p, unix); r != proto.OK {
			e.reject(r, p)
			continue
		}
		if p.Step < e.cfg.MinStep {
			p.Step = e.cfg.MinStep
		}
		p.Timestamp = proto.AlignTimestamp(p.Timestamp, p.Step)
		cp := *p
		if len(p.Tags) > 0 {
			s := len(m.tags)
			m.tags = append(m.tags, p.Tags...)
			cp.Tags = m.tags[s:len(m.tags):len(m.tags)]
		}
		m.points = append(m.points, cp)
	}
	if len(m.points) == 0 {
		e.ack(m)
		e.freeMsg(m)
		return
	}
	m.outstanding = len(m.points)
	m.lastMark = now
	e.link(m)
	e.pending += len(m.points)
	for i := range m.points {
		e.route(ref{m: m, i: int32(i)}, now)
	}
}

func (e *Engine) reject(r proto.Reason, p *proto.Point) {
	e.met.RejectedCounter(r).Inc()
	if ok, n := e.rl.Allow(r.String()); ok {
		e.log.Warn("point rejected", "reason", r.String(), "why", r.Text(), "endpoint", p.Endpoint, "metric", p.Metric, "suppressed", n)
	}
}

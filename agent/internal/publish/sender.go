package publish

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The sender goroutine: it publishes the head of the queue, re-splits a
// batch the server finds too large, and backs off while NATS fails.

func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	var backoff time.Duration
	for {
		p.mu.Lock()
		empty, closing := len(p.q) == 0, p.closing
		p.mu.Unlock()
		if empty {
			if closing {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-p.kick:
				t.Stop()
			}
		}
		p.mu.Lock()
		if len(p.q) == 0 {
			p.mu.Unlock()
			continue
		}
		b := p.q[0]
		b.inflight = true
		p.mu.Unlock()

		if b.attempts > 0 {
			p.m.Retries.Inc()
		}
		err := p.publish(ctx, b)

		p.mu.Lock()
		b.inflight = false
		switch {
		case err == nil:
			p.removeLocked(0)
			p.failing = false
			backoff = 0
			p.m.BatchesPublished.Inc()
			p.m.PointsPublished.Add(float64(b.points))
			p.resolveLocked(b, false)
		case ctx.Err() != nil:
			p.mu.Unlock()
			return
		case errors.Is(err, nats.ErrMaxPayload):
			// The server's limit shrank (another server after a
			// reconnect): split the batch again under the new limit.
			p.m.PublishErrors.WithLabelValues(KindTooLarge).Inc()
			p.resplitLocked(b, err)
		default:
			kind := ErrorKind(err)
			p.m.PublishErrors.WithLabelValues(kind).Inc()
			b.attempts++
			p.failing = true
			for _, qb := range p.q {
				p.resolveLocked(qb, false)
			}
			backoff = nextBackoff(backoff, p.cfg.InitialBackoff, p.cfg.MaxBackoff)
			if ok, suppressed := p.rl.Allow("publish:" + kind); ok {
				p.log.Warn("publish failed, will retry", "kind", kind, "err", err, "msg_id", b.id,
					"attempts", b.attempts, "backoff", backoff, "queued_batches", len(p.q), "suppressed", suppressed)
			}
		}
		p.mu.Unlock()
	}
}

// resplitLocked replaces the head b by smaller batches with derived Msg-Ids.
func (p *Publisher) resplitLocked(b *batch, cause error) {
	pts, err := proto.DecodeBatch(b.data)
	var datas [][]byte
	if err == nil {
		datas, err = proto.SplitBatches(pts, p.MaxPayload())
	}
	p.removeLocked(0)
	if err != nil || len(datas) < 2 {
		p.dropLocked(b, DropTooLarge)
		p.log.Warn("batch too large for the server", "msg_id", b.id, "err", errors.Join(cause, err))
		return
	}
	parts := make([]*batch, len(datas))
	for i, d := range datas {
		parts[i] = &batch{id: b.id + "." + strconv.Itoa(i), data: d, points: batchCount(d), w: b.w, resolved: b.resolved}
		p.qBytes += int64(len(d))
	}
	if b.w != nil && !b.resolved {
		b.w.remaining += len(parts) - 1
	}
	p.q = append(parts, p.q...)
	p.gaugeLocked()
}

func (p *Publisher) publish(ctx context.Context, b *batch) error {
	if !p.nc.IsConnected() {
		return errDisconnected
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	msg := &nats.Msg{Subject: p.cfg.Subject, Data: b.data, Header: nats.Header{}}
	_, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(b.id), jetstream.WithRetryAttempts(0))
	return err
}

// ErrorKind classifies a publish error into the closed set of kinds.
func ErrorKind(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return KindTimeout
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return KindNoResponders
	case errors.Is(err, errDisconnected), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionDraining):
		return KindDisconnected
	case errors.Is(err, nats.ErrMaxPayload):
		return KindTooLarge
	case errors.As(err, &apiErr):
		return KindRejected
	}
	return KindOther
}

func nextBackoff(cur, initial, max time.Duration) time.Duration {
	if cur <= 0 {
		return initial
	}
	cur *= 2
	if cur > max || cur <= 0 {
		return max
	}
	return cur
}

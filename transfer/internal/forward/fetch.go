package forward

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchLoop pulls batches of ingest messages while fetching is allowed
// (see waitFetchable) and hands them to the loop until ctx ends.
func (e *Engine) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		if !e.waitFetchable(ctx) {
			return
		}
		b, err := cons.Fetch(e.cfg.FetchBatch, jetstream.FetchMaxWait(e.cfg.FetchWait))
		if err != nil {
			e.fetchError(ctx, err)
			continue
		}
		for m := range b.Messages() {
			select {
			case e.in <- m:
			case <-ctx.Done():
				// Not routed: hand it back for another transfer.
				if err := m.Nak(); err != nil {
					e.msgOpFailed(OpNak, err)
				} else {
					e.met.MessagesNaked.WithLabelValues(NakShutdown).Inc()
				}
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			e.fetchError(ctx, err)
		}
	}
}

// warmingUp is the reason fetching pauses after the start and every
// reconnect (logged at Info: it is expected).
const warmingUp = "membership warming up"

// waitFetchable returns true at once when fetching may go on, else
// pauses (kestrel_transfer_fetch_paused 1) until the gate opens and a
// judge is alive; false when ctx ends first.
func (e *Engine) waitFetchable(ctx context.Context) bool {
	paused := ""
	for {
		memChanged := e.mem.Changed()
		var gateChanged <-chan struct{}
		why := ""
		if e.cfg.Gate != nil {
			gateChanged = e.cfg.Gate.Changed()
			why = e.cfg.Gate.Blocked()
		}
		if why == "" && !e.mem.Ready() {
			why = warmingUp
		}
		if why == "" && e.mem.Ring().Len() == 0 {
			why = "no judge alive"
		}
		if why == "" {
			if paused != "" {
				e.met.FetchPaused.Set(0)
				e.log.Info("fetching resumed", "members", e.mem.Ring().Len())
			}
			return true
		}
		if why != paused {
			e.met.FetchPaused.Set(1)
			level := slog.LevelWarn
			if why == warmingUp {
				level = slog.LevelInfo // every start and reconnect
			}
			e.log.Log(ctx, level, "fetching paused", "reason", why, "members", e.mem.Ring().Len())
			paused = why
		}
		select {
		case <-memChanged:
		case <-gateChanged:
		case <-ctx.Done():
			return false
		}
	}
}

func (e *Engine) fetchError(ctx context.Context, err error) {
	e.met.FetchErrors.Inc()
	if ok, n := e.rl.Allow("fetch"); ok {
		e.log.Warn("fetch failed", "err", err, "suppressed", n)
	}
	t := time.NewTimer(min(e.cfg.FetchWait, time.Second))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

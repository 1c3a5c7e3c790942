package ingest

import (
	"context"
	"sync"
	"time"
)

// roomGate bounds the points accepted and not yet stored. A request larger
// than the whole budget takes all of it (and may borrow beyond it) so it
// can still pass, alone.
type roomGate struct {
	mu      sync.Mutex
	free    int
	changed chan struct{} // closed and replaced when room is released
}

func (g *roomGate) init(n int) {
	g.free = n
	g.changed = make(chan struct{})
}

// acquire takes n points of room, waiting at most maxWait (and while ctx
// lasts); ErrBusy when there is none by then.
func (g *roomGate) acquire(ctx context.Context, n int, maxWait time.Duration) error {
	var timer *time.Timer
	for {
		g.mu.Lock()
		if g.free >= n {
			g.free -= n
			g.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		ch := g.changed
		g.mu.Unlock()
		if timer == nil {
			if maxWait <= 0 {
				return ErrBusy
			}
			timer = time.NewTimer(maxWait)
		}
		select {
		case <-ch:
		case <-timer.C:
			return ErrBusy
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}

// borrow takes n points of room beyond what is free (for the part of one
// request larger than the budget; given back by release).
func (g *roomGate) borrow(n int) {
	g.mu.Lock()
	g.free -= n
	g.mu.Unlock()
}

// release gives back n points of room.
func (g *roomGate) release(n int) {
	g.mu.Lock()
	g.free += n
	ch := g.changed
	g.changed = make(chan struct{})
	g.mu.Unlock()
	close(ch)
}

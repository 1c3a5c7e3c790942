// Package ratelog limits how often a log line with the same key is written.
package ratelog

import (
	"sync"
	"time"
)

// Limiter allows one event per key per interval. The zero value is not
// usable; use New.
type Limiter struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	last  map[string]time.Time
	// suppressed counts events swallowed per key since the last allowed one.
	suppressed map[string]int
}

// New returns a limiter allowing one event per key every interval.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, now: time.Now, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

// Allow reports whether an event for key may be logged now, and how many
// events for key were suppressed since the previous allowed one.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if t, seen := l.last[key]; seen && now.Sub(t) < l.every {
		l.suppressed[key]++
		return false, 0
	}
	l.last[key] = now
	n := l.suppressed[key]
	l.suppressed[key] = 0
	return true, n
}

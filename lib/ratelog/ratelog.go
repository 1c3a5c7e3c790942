// Package ratelog lets a caller log at most once per interval per key,
// reporting how many lines it suppressed, so a flood of rejections cannot
// flood the log. Allow does not allocate for keys already seen.
package ratelog

import (
	"sync"
	"time"
)

// Limiter rate-limits by key (keys come from closed sets).
type Limiter struct {
	every time.Duration
	mu    sync.Mutex
	state map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed int
}

// New returns a limiter allowing each key at most once per every.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, state: make(map[string]*entry)}
}

// Allow reports whether a line for key may be logged now (ok), and how
// many were suppressed since the last allowed one.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.state[key]
	if e == nil {
		e = &entry{}
		l.state[key] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.suppressed = 0
	e.last = now
	return true, n
}

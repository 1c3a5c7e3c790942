// Package wait polls a condition in a test until it holds, instead of
// sleeping a guessed time. The condition runs on the test's goroutine, so
// it may call t.Fatal itself to give up early (a process it waits on has
// exited, say).
package wait

import (
	"errors"
	"testing"
	"time"
)

// The first poll is immediate; the pause between polls then grows from
// firstPause to maxPause, so a quick condition is seen quickly and a slow
// one (an HTTP request, a child process) is not hammered.
const (
	firstPause = 5 * time.Millisecond
	maxPause   = 50 * time.Millisecond
)

var errNotYet = errors.New("condition not met")

// For polls cond until it returns true. After timeout it fails the test:
// "timed out after <timeout> waiting for <what>".
func For(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	Until(t, what, timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// Until polls check until it returns nil. After timeout it fails the test
// with what and check's last error, which says why it was not done yet
// ("active 1.0.0, want 1.1.0").
func Until(t testing.TB, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := firstPause
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if errors.Is(err, errNotYet) {
				t.Fatalf("timed out after %s waiting for %s", timeout, what)
			}
			t.Fatalf("timed out after %s waiting for %s; last: %v", timeout, what, err)
		}
		time.Sleep(pause)
		pause = min(pause*3/2, maxPause)
	}
}

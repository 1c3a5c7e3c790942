package spawn

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrDied marks a child that exited when it was expected to run.
var ErrDied = errors.New("a child process died")

// pollEvery is the pause between two readiness checks.
const pollEvery = 50 * time.Millisecond

// WaitReady polls ready until it is true, the child exits (an error
// wrapping ErrDied), ctx ends or wait has passed. The errors carry the
// last lines of the child's log. The child is left running on a timeout.
func WaitReady(ctx context.Context, c *Child, wait time.Duration, ready func() bool) error {
	deadline := time.Now().Add(wait)
	for {
		if ready() {
			return nil
		}
		select {
		case <-c.Done():
			return fmt.Errorf("%w: %s exited while starting (%s); last lines of %s:\n%s",
				ErrDied, c.Name, c.ExitStatus(), c.LogPath, TailFile(c.LogPath, 30))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not ready after %s; last lines of %s:\n%s", c.Name, wait, c.LogPath, TailFile(c.LogPath, 30))
		}
	}
}

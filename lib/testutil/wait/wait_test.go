package wait

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeT records a Fatalf and ends its goroutine, as testing.T does.
type fakeT struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// run calls fn(ft) on a goroutine of its own (Fatalf ends it) and returns
// what Fatalf said ("" if it was not called).
func run(fn func(ft *fakeT)) string {
	ft := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ft)
	}()
	<-done
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.fatal
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	msg := run(func(ft *fakeT) {
		For(ft, "three calls", 10*time.Second, func() bool { calls++; return calls == 3 })
	})
	if msg != "" || calls != 3 {
		t.Fatalf("fatal %q after %d calls; want none after 3", msg, calls)
	}
}

func TestForTimesOut(t *testing.T) {
	calls := 0
	start := time.Now()
	msg := run(func(ft *fakeT) {
		For(ft, "never", 100*time.Millisecond, func() bool { calls++; return false })
	})
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("gave up after %s, before the timeout", took)
	}
	if want := "timed out after 100ms waiting for never"; msg != want {
		t.Errorf("fatal %q, want %q", msg, want)
	}
	if calls < 3 {
		t.Errorf("polled %d times in 100ms", calls)
	}
}

func TestUntilReportsTheLastError(t *testing.T) {
	n := 0
	msg := run(func(ft *fakeT) {
		Until(ft, "version 2", 50*time.Millisecond, func() error { n++; return fmt.Errorf("at version 1 (poll %d)", n) })
	})
	want := fmt.Sprintf("timed out after 50ms waiting for version 2; last: at version 1 (poll %d)", n)
	if msg != want {
		t.Errorf("fatal %q, want %q", msg, want)
	}
}

func TestUntilConditionMayFailTheTestEarly(t *testing.T) {
	msg := run(func(ft *fakeT) {
		Until(ft, "a process", time.Hour, func() error {
			ft.Fatalf("the process exited")
			return nil
		})
	})
	if !strings.Contains(msg, "the process exited") {
		t.Errorf("fatal %q", msg)
	}
}

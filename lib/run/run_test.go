package run

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
)

func TestExitCodes(t *testing.T) {
	if ExitOK != 0 || ExitFailure != 1 || ExitUsage != 2 {
		t.Fatalf("exit codes = %d, %d, %d; want 0, 1, 2", ExitOK, ExitFailure, ExitUsage)
	}
}

func TestShutdownRunsStepsInOrderAndLogsEach(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	sd := NewShutdown(log, time.Minute)
	var order []string
	boom := errors.New("boom")
	if err := sd.Step("first", func(context.Context) error { order = append(order, "first"); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := sd.Step("second", func(context.Context) error { order = append(order, "second"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("Step returned %v, want %v", err, boom)
	}
	sd.Step("third", func(context.Context) error { order = append(order, "third"); return nil })
	if got := strings.Join(order, ","); got != "first,second,third" {
		t.Fatalf("ran %s, want first,second,third (a failed step does not stop the rest)", got)
	}
	err := sd.Err()
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "shutdown step second: boom") {
		t.Fatalf("Err() = %v, want the second step's error named", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 log lines, got:\n%s", buf.String())
	}
	for i, want := range []string{
		`level=INFO msg="shutdown step done" step=first took=`,
		`level=WARN msg="shutdown step failed" step=second err=boom took=`,
		`level=INFO msg="shutdown step done" step=third took=`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
}

func TestShutdownNoErrors(t *testing.T) {
	sd := NewShutdown(slog.New(slog.DiscardHandler), time.Minute)
	sd.Step("a", func(context.Context) error { return nil })
	if err := sd.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
}

func TestShutdownStepsShareOneDeadline(t *testing.T) {
	sd := NewShutdown(slog.New(slog.DiscardHandler), 50*time.Millisecond)
	var first, second time.Time
	sd.Step("slow", func(ctx context.Context) error {
		first, _ = ctx.Deadline()
		<-ctx.Done() // waits out the whole budget
		return ctx.Err()
	})
	err := sd.Step("late", func(ctx context.Context) error {
		second, _ = ctx.Deadline()
		return ctx.Err()
	})
	if !first.Equal(second) || first.IsZero() {
		t.Fatalf("deadlines %v and %v, want one shared deadline", first, second)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a step after the deadline got %v, want its context already ended", err)
	}
	if !errors.Is(sd.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v", sd.Err())
	}
}

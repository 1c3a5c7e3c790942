package syncbuf

import (
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var _ io.Writer = (*Buffer)(nil)

// Writers and a reader at once: run with -race.
func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	const writers, lines = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&b, "w%d line %03d\n", w, i)
			}
		})
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
				_ = strings.Count(b.String(), "\n")
				_ = b.Len()
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	if got := strings.Count(b.String(), "\n"); got != writers*lines {
		t.Fatalf("%d lines, want %d", got, writers*lines)
	}
	if b.Len() != len(b.String()) {
		t.Fatalf("Len %d, String has %d bytes", b.Len(), len(b.String()))
	}
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if len(l) != len("w0 line 000") {
			t.Fatalf("interleaved write: %q", l)
		}
	}
}

// A child's output read while the child writes (exec.Cmd copies it from
// a goroutine of its own).
func TestChildOutput(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	var b Buffer
	cmd := exec.Command(sh, "-c", "for i in 1 2 3; do echo line $i; done")
	cmd.Stdout = &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = b.String() // while the copier may be writing
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "line 1\nline 2\nline 3\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

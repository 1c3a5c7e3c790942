package proctest

import (
	"strings"
	"testing"
	"time"
)

// The child's output can be read while the child is still writing it
// (under -race a bytes.Buffer handed to exec.Cmd fails here), and Wait
// reports the exit.
func TestOutputReadableWhileRunning(t *testing.T) {
	p := Start(t, "/bin/sh", "-c", `i=0; while [ $i -lt 3000 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done; sleep 0.3; exit 3`)
	deadline := time.Now().Add(20 * time.Second)
	reads := 0
	for !strings.Contains(p.Output.String(), "err 2999") {
		if time.Now().After(deadline) {
			t.Fatal("output never complete")
		}
		reads++
	}
	exited, err := p.Wait(20 * time.Second)
	if !exited || err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("wait: exited %v, err %v", exited, err)
	}
	if n := strings.Count(p.Output.String(), "\n"); n != 6000 {
		t.Fatalf("%d lines, want 6000", n)
	}
	t.Logf("read the output %d times while the child wrote it", reads)
}

func TestRun(t *testing.T) {
	code, stdout, stderr := Run(t, "/bin/sh", "-c", "echo out; echo err >&2; exit 2")
	if code != 2 || stdout != "out\n" || stderr != "err\n" {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout, stderr)
	}
}

package ratelog

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	l := New(10 * time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first event must pass")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("second event within the interval must be suppressed")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("other key must pass")
	}
	l.Allow("a")
	now = now.Add(10 * time.Second)
	ok, n := l.Allow("a")
	if !ok || n != 2 {
		t.Fatalf("after the interval: ok=%v suppressed=%d, want true 2", ok, n)
	}
}

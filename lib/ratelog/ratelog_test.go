package ratelog

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestAllow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(10 * time.Second)
		f := func(key string, wantSuppressed int, wantOK bool) {
			t.Helper()
			if ok, n := l.Allow(key); n != wantSuppressed || ok != wantOK {
				t.Fatalf("Allow(%q) = (%d, %v), want (%d, %v)", key, n, ok, wantSuppressed, wantOK)
			}
		}
		f("a", 0, true)
		f("a", 0, false)
		f("a", 0, false)
		f("b", 0, true) // keys are independent
		time.Sleep(9 * time.Second)
		f("a", 0, false)
		time.Sleep(time.Second)
		f("a", 3, true) // reports the three suppressed since the last line
		f("a", 0, false)
		time.Sleep(10 * time.Second)
		f("a", 1, true)
		f("b", 0, true)
	})
}

func TestAllowDoesNotAllocate(t *testing.T) {
	l := New(time.Hour)
	l.Allow("k")
	if n := testing.AllocsPerRun(100, func() { l.Allow("k") }); n != 0 {
		t.Fatalf("Allow allocates %v for a known key", n)
	}
}

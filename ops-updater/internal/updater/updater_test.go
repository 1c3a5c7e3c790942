package updater

import (
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/install"
)

// The first heartbeat comes after a random delay in [0, interval), so a
// fleet restarted at once does not heartbeat at once.
func TestDefaultInitialDelay(t *testing.T) {
	u := New(Options{Manager: &install.Manager{}, Interval: time.Second})
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := u.o.InitialDelay(time.Second)
		if d < 0 || d >= time.Second {
			t.Fatalf("initial delay %s outside [0, 1s)", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Fatalf("initial delay is not random: %d distinct values in 1000", len(seen))
	}
}

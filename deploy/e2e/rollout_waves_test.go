//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

// waveOf mirrors ops-meta's documented bucket rule (sha256(id/hostname),
// first 8 bytes big-endian, mod 10000) — used only to pick hostnames that
// fill every wave.
func waveOf(id, host string, waves []float64) int {
	sum := sha256.Sum256([]byte(id + "/" + host))
	b := int(binary.BigEndian.Uint64(sum[:8]) % 10000)
	for i, w := range waves {
		if b < int(math.Round(w*100)) {
			return i + 1
		}
	}
	return len(waves)
}

// pickHosts returns n hostnames with at least 2 in every wave of both
// rollouts' first wave.
func pickHosts(n int, ids []string, waves []float64) []string {
	for seed := 0; ; seed++ {
		var hosts []string
		for i := range n {
			hosts = append(hosts, fmt.Sprintf("fleet-%d-%02d", seed, i))
		}
		ok := true
		for _, id := range ids {
			count := map[int]int{}
			for _, h := range hosts {
				count[waveOf(id, h, waves)]++
			}
			for w := 1; w <= len(waves); w++ {
				if count[w] < 2 {
					ok = false
				}
			}
		}
		if ok {
			return hosts
		}
	}
}

// TestRolloutWaves: 8 updaters (processes, race-built) move from 1.0.0
// to 1.1.0 in waves with promotion; then a rollout to a broken 1.2.0 halts
// in its first wave and every host ends on 1.1.0 again.
func TestRolloutWaves(t *testing.T) {
	waves := []float64{25, 50, 100}
	hosts := pickHosts(8, []string{"up-1.1.0", "up-1.2.0"}, waves)
	hurl := healthServer(t)
	opts := metaOpts{Version: "1.0.0", HealthURL: hurl, Waves: "[25, 50, 100]", Soak: "1s", Deadline: "90s"}
	m := startMeta(t, opts)
	m.publish("1.0.0", agentPkg("1.0.0", false))
	m.publish("1.1.0", agentPkg("1.1.0", false))
	m.publish("1.2.0", agentPkg("1.2.0", true))

	roots := map[string]string{}
	for _, h := range hosts {
		u := startUpdater(t, m, updOpts{Hostname: h, Interval: "500ms", RequireSignature: true}, "")
		roots[h] = u.root
	}
	allOn := func(v string) func() (bool, string) {
		return func() (bool, string) {
			for _, h := range hosts {
				if ok, s := whole(roots[h], v); !ok {
					return false, h + ": " + s
				}
				a, _ := m.host(h)
				if a.Version != v || a.Status != "started" || a.Error != "" || a.Pending != "" {
					return false, fmt.Sprintf("%s: ops-meta sees %+v", h, a)
				}
			}
			return true, ""
		}
	}
	wait.Until(t, "every host on 1.0.0", 90*time.Second, state(allOn("1.0.0")))

	// Rollout 1.0.0 -> 1.1.0.
	spec := map[string]any{"id": "up-1.1.0", "agent": agentName, "from": "1.0.0", "to": "1.1.0", "waves": waves, "soak": "1s", "deadline": "90s"}
	if code := m.api(http.MethodPost, "/api/v1/rollouts", spec, nil); code != http.StatusCreated {
		t.Fatalf("create rollout: %d", code)
	}
	sawMixed := false
	maxWave := 0
	wait.Until(t, "rollout up-1.1.0 completed", 180*time.Second, state(func() (bool, string) {
		r := m.rollout("up-1.1.0")
		maxWave = max(maxWave, r.Wave)
		on := 0
		for _, h := range hosts {
			if _, err := os.Stat(filepath.Join(roots[h], agentName, "1.1.0")); err == nil {
				on++
				// A host of a wave not promoted yet never gets the new version.
				if w := waveOf("up-1.1.0", h, waves); r.Status == "running" && w > r.Wave {
					// The host may have been promoted between our two reads; re-read.
					if r2 := m.rollout("up-1.1.0"); w > r2.Wave {
						t.Fatalf("host %s of wave %d installed 1.1.0 while the rollout is at wave %d", h, w, r2.Wave)
					}
				}
			}
		}
		if on > 0 && on < len(hosts) {
			sawMixed = true
		}
		return r.Status == "completed", fmt.Sprintf("status %s wave %d, %d hosts have 1.1.0", r.Status, r.Wave, on)
	}))
	if !sawMixed || maxWave != len(waves) {
		t.Fatalf("no staged rollout seen: mixed %v, max wave %d", sawMixed, maxWave)
	}
	wait.Until(t, "every host on 1.1.0", 60*time.Second, state(allOn("1.1.0")))

	// The operator moves the default, then rolls out a broken 1.2.0.
	opts.Version = "1.1.0"
	m.reload(opts)
	spec = map[string]any{"id": "up-1.2.0", "agent": agentName, "from": "1.1.0", "to": "1.2.0", "waves": waves, "soak": "1s", "deadline": "90s"}
	if code := m.api(http.MethodPost, "/api/v1/rollouts", spec, nil); code != http.StatusCreated {
		t.Fatalf("create rollout: %d", code)
	}
	wait.Until(t, "rollout up-1.2.0 halted", 120*time.Second, state(func() (bool, string) {
		r := m.rollout("up-1.2.0")
		return r.Status == "halted", fmt.Sprintf("%+v", r)
	}))
	r := m.rollout("up-1.2.0")
	t.Logf("halted: %s", r.Reason)
	if r.Wave != 1 {
		t.Fatalf("halted at wave %d, want 1", r.Wave)
	}
	wait.Until(t, "every host back on 1.1.0 with no error", 60*time.Second, state(allOn("1.1.0")))
	tried := 0
	for _, h := range hosts {
		_, err := os.Stat(filepath.Join(roots[h], agentName, "1.2.0"))
		if w := waveOf("up-1.2.0", h, waves); w > 1 && err == nil {
			t.Fatalf("host %s of wave %d installed the broken version", h, w)
		} else if err == nil {
			tried++
		}
	}
	if tried == 0 {
		t.Fatal("no host of wave 1 tried 1.2.0")
	}
}

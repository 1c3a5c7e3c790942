package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/desired"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
)

func TestBucketStable(t *testing.T) {
	// Fixed values: the bucket function must never change, or running
	// rollouts would reshuffle hosts between waves after an upgrade.
	if b := Bucket("r1", "web-01"); b != Bucket("r1", "web-01") || b < 0 || b >= Buckets {
		t.Fatal("unstable")
	}
	if Bucket("r1", "web-01") == Bucket("r2", "web-01") && Bucket("r1", "web-02") == Bucket("r2", "web-02") {
		t.Fatal("bucket ignores the rollout id")
	}
	counts := make([]int, 4)
	waves := []float64{1, 10, 50, 100}
	for i := range 20000 {
		counts[WaveOf(waves, Bucket("r", fmt.Sprintf("host-%05d", i)))-1]++
	}
	// 1 %, 9 %, 40 %, 50 % of 20000 with generous slack.
	want := []int{200, 1800, 8000, 10000}
	for i := range want {
		if d := counts[i] - want[i]; d < -want[i]/4 || d > want[i]/4 {
			t.Fatalf("wave sizes %v, want about %v", counts, want)
		}
	}
}

func TestWaveOf(t *testing.T) {
	w := []float64{1, 10, 50, 100}
	for _, c := range []struct{ b, wave int }{{0, 1}, {99, 1}, {100, 2}, {999, 2}, {1000, 3}, {4999, 3}, {5000, 4}, {9999, 4}} {
		if got := WaveOf(w, c.b); got != c.wave {
			t.Errorf("bucket %d: wave %d, want %d", c.b, got, c.wave)
		}
	}
	if WaveOf([]float64{0.5, 100}, 49) != 1 || WaveOf([]float64{0.5, 100}, 50) != 2 {
		t.Fatal("fractional percent")
	}
}

func TestThreshold(t *testing.T) {
	for _, c := range []struct {
		spec string
		n    int
		want int
	}{{"", 0, 1}, {"", 19, 1}, {"", 20, 1}, {"", 100, 5}, {"", 101, 6}, {"3", 100, 3}, {"10%", 5, 1}, {"10%", 100, 10}} {
		if got := Threshold(c.spec, c.n); got != c.want {
			t.Errorf("%q n=%d: %d want %d", c.spec, c.n, got, c.want)
		}
	}
}

// hostsByWave finds n hostnames per wave for rollout id.
func hostsByWave(id string, waves []float64, n int) [][]string {
	out := make([][]string, len(waves))
	for i := 0; ; i++ {
		h := fmt.Sprintf("h%d", i)
		w := WaveOf(waves, Bucket(id, h))
		if len(out[w-1]) < n {
			out[w-1] = append(out[w-1], h)
		}
		done := true
		for _, l := range out {
			done = done && len(l) == n
		}
		if done {
			return out
		}
	}
}

type fleet map[string]store.Agent

func (f fleet) hosts(seen time.Time) []store.Host {
	var out []store.Host
	for name, a := range f {
		out = append(out, store.Host{Name: name, FirstSeen: seen, LastSeen: seen, Agents: []store.Agent{a}})
	}
	return out
}

func newRollout(t0 time.Time) store.Rollout {
	return New(desired.RolloutSpec{ID: "r", Agent: "ag", From: "1.0", To: "2.0", Waves: []float64{25, 50, 100},
		Soak: time.Minute, Deadline: 10 * time.Minute}, "api", t0)
}

func TestEvaluatePromotesAndCompletes(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	r := newRollout(t0)
	byWave := hostsByWave("r", r.Waves, 2)
	f := fleet{}
	for _, hs := range byWave {
		for _, h := range hs {
			f[h] = store.Agent{Name: "ag", Version: "1.0", Status: "started"}
		}
	}
	set := func(wave int, a store.Agent) {
		for _, h := range byWave[wave-1] {
			f[h] = a
		}
	}
	// Desired versions: wave 1 at 2.0, others at 1.0, each with its wave.
	if v, w := Desired(&r, byWave[0][0]); v != "2.0" || w != 1 {
		t.Fatalf("wave 1 host: %s %d", v, w)
	}
	if v, w := Desired(&r, byWave[1][0]); v != "1.0" || w != 2 {
		t.Fatalf("wave 2 host: %s %d", v, w)
	}
	now := t0.Add(time.Second)
	if out, _ := Evaluate(&r, f.hosts(t0), now); out != Unchanged {
		t.Fatalf("not healthy yet: %v", out)
	}
	set(1, store.Agent{Name: "ag", Version: "2.0", Status: "started"})
	if out, _ := Evaluate(&r, f.hosts(t0), now); out != Updated || !r.HealthySince.Equal(now) {
		t.Fatalf("healthy since: %v %v", out, r.HealthySince)
	}
	if out, _ := Evaluate(&r, f.hosts(t0), now.Add(30*time.Second)); out != Unchanged {
		t.Fatalf("soaking: %v", out)
	}
	now = now.Add(time.Minute)
	out, p := Evaluate(&r, f.hosts(t0), now)
	if out != Promoted || r.Wave != 2 || !p.Waves[1].Promoted || p.Waves[1].Pending != 2 {
		t.Fatalf("promotion: %v wave %d %+v", out, r.Wave, p.Waves)
	}
	if v, _ := Desired(&r, byWave[1][0]); v != "2.0" {
		t.Fatal("wave 2 must now be at 2.0")
	}
	// A host joining later falls into its wave by itself.
	late := ""
	for i := 0; late == ""; i++ {
		if h := fmt.Sprintf("late%d", i); HostWave(&r, h) == 3 {
			late = h
		}
	}
	if v, w := Desired(&r, late); v != "1.0" || w != 3 {
		t.Fatalf("late host %s %d", v, w)
	}
	set(2, store.Agent{Name: "ag", Version: "2.0", Status: "started"})
	Evaluate(&r, f.hosts(t0), now)
	now = now.Add(time.Minute)
	if out, _ := Evaluate(&r, f.hosts(t0), now); out != Promoted || r.Wave != 3 {
		t.Fatalf("wave 3: %v %d", out, r.Wave)
	}
	set(3, store.Agent{Name: "ag", Version: "2.0", Status: "started"})
	Evaluate(&r, f.hosts(t0), now)
	now = now.Add(time.Minute)
	if out, _ := Evaluate(&r, f.hosts(t0), now); out != CompletedNow || r.Status != store.Completed {
		t.Fatalf("complete: %v %s", out, r.Status)
	}
	if v, w := Desired(&r, late); v != "2.0" || w != 0 {
		t.Fatal("completed rollout: everyone at 2.0")
	}
}

func TestEvaluateHaltsOnError(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	r := newRollout(t0)
	byWave := hostsByWave("r", r.Waves, 3)
	f := fleet{}
	for _, hs := range byWave {
		for _, h := range hs {
			f[h] = store.Agent{Name: "ag", Version: "1.0", Status: "started"}
		}
	}
	f[byWave[0][0]] = store.Agent{Name: "ag", Version: "1.0", Status: "started", Error: "health check: 500"}
	out, _ := Evaluate(&r, f.hosts(t0), t0.Add(time.Second))
	if out != HaltedNow || r.Status != store.Halted || r.Reason == "" {
		t.Fatalf("halt: %v %+v", out, r)
	}
	for _, hs := range byWave {
		for _, h := range hs {
			if v, _ := Desired(&r, h); v != "1.0" {
				t.Fatal("halted: everyone back at 1.0")
			}
		}
	}
	if out, _ := Evaluate(&r, f.hosts(t0), t0.Add(time.Hour)); out != Unchanged || r.Status != store.Halted {
		t.Fatal("halted is final")
	}
	if err := Resume(&r, t0); err == nil {
		t.Fatal("cannot resume a halted rollout")
	}
}

func TestEvaluateDeadlineAndThreshold(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	r := newRollout(t0)
	r.FailureThreshold = "2"
	byWave := hostsByWave("r", r.Waves, 3)
	f := fleet{}
	for _, hs := range byWave {
		for _, h := range hs {
			f[h] = store.Agent{Name: "ag", Version: "1.0", Status: "started"}
		}
	}
	f[byWave[0][0]] = store.Agent{Name: "ag", Version: "2.0", Status: "started"}
	f[byWave[0][1]] = store.Agent{Name: "ag", Version: "2.0", Status: "started"}
	// One host never moves: failed after the deadline, but 1 < threshold 2.
	out, p := Evaluate(&r, f.hosts(t0), t0.Add(11*time.Minute))
	if out != Unchanged || p.Waves[0].Failed != 1 || r.Status != store.Running {
		t.Fatalf("one failure under threshold: %v %+v", out, p.Waves[0])
	}
	f[byWave[0][1]] = store.Agent{Name: "ag", Version: "2.0", Status: "stoped"}
	out, _ = Evaluate(&r, f.hosts(t0), t0.Add(12*time.Minute))
	if out != HaltedNow {
		t.Fatalf("two failures: %v", out)
	}
	// A host seen for the first time after the wave opened gets its own deadline.
	r = newRollout(t0)
	h := byWave[0][0]
	hosts := []store.Host{{Name: h, FirstSeen: t0.Add(20 * time.Minute), LastSeen: t0.Add(20 * time.Minute)}}
	if _, p := Evaluate(&r, hosts, t0.Add(21*time.Minute)); p.Hosts[0].State != StatePending {
		t.Fatalf("late host: %+v", p.Hosts[0])
	}
}

func TestPauseResumeAbort(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	r := newRollout(t0)
	byWave := hostsByWave("r", r.Waves, 1)
	f := fleet{byWave[0][0]: {Name: "ag", Version: "2.0", Status: "started"}, byWave[1][0]: {Name: "ag", Version: "1.0", Status: "started"}}
	if err := Pause(&r, t0); err != nil {
		t.Fatal(err)
	}
	if err := Pause(&r, t0); err == nil {
		t.Fatal("double pause")
	}
	if out, _ := Evaluate(&r, f.hosts(t0), t0.Add(time.Hour)); out != Unchanged || r.Wave != 1 {
		t.Fatal("paused rollouts do not promote")
	}
	if v, _ := Desired(&r, byWave[0][0]); v != "2.0" {
		t.Fatal("paused keeps versions")
	}
	resume := t0.Add(time.Hour)
	if err := Resume(&r, resume); err != nil {
		t.Fatal(err)
	}
	// A pending host's deadline restarts at resume.
	f[byWave[0][0]] = store.Agent{Name: "ag", Version: "1.0", Status: "started"}
	if _, p := Evaluate(&r, f.hosts(t0), resume.Add(time.Minute)); p.Waves[0].Failed != 0 {
		t.Fatalf("deadline restarted: %+v", p.Waves[0])
	}
	if err := Abort(&r, resume, "test"); err != nil {
		t.Fatal(err)
	}
	if v, w := Desired(&r, byWave[0][0]); v != "1.0" || w != 0 {
		t.Fatal("aborted: back to 1.0")
	}
	if err := Abort(&r, resume, "again"); err == nil {
		t.Fatal("abort is final")
	}
}

func TestFleetDropsStale(t *testing.T) {
	now := time.Unix(1700000000, 0)
	hs := []store.Host{{Name: "a", LastSeen: now}, {Name: "b", LastSeen: now.Add(-time.Hour)}}
	if f := Fleet(hs, now, 15*time.Minute); len(f) != 1 || f[0].Name != "a" {
		t.Fatalf("%+v", f)
	}
}

// A host whose effective spec is cmd stop is kept stopped by the operator:
// it is left out of the rollout's accounting, so it never fails the
// rollout and never blocks promotion or completion.
func TestStoppedHostsLeftOut(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	r := newRollout(t0)
	agent := &desired.Agent{
		Default: desired.AgentSpec{Name: "ag", Version: "1.0", Cmd: desired.CmdStart},
		Others: []desired.Override{
			{Prefix: "parked", AgentSpec: desired.AgentSpec{Cmd: desired.CmdStop}},
			{Prefix: "parked-on", AgentSpec: desired.AgentSpec{Version: "0.9"}}, // last match wins: not stopped
			{Prefix: "mirror", AgentSpec: desired.AgentSpec{Tarball: "http://mirror/a"}},
		},
	}
	f := fleet{}
	for _, hs := range hostsByWave("r", r.Waves, 2) {
		for _, h := range hs {
			f[h] = store.Agent{Name: "ag", Version: "2.0", Status: "started"}
		}
	}
	f["parked-on-1"] = store.Agent{Name: "ag", Version: "2.0", Status: "started"}
	f["mirror-1"] = store.Agent{Name: "ag", Version: "2.0", Status: "started"}
	// One stopped host per wave, reporting the old version stopped; without
	// the exclusion each would fail at its deadline and halt the rollout.
	parked := map[string]bool{}
	seen := map[int]bool{}
	for i := 0; len(seen) < len(r.Waves); i++ {
		h := fmt.Sprintf("parked-%d", i)
		if w := HostWave(&r, h); !seen[w] {
			seen[w], parked[h] = true, true
			f[h] = store.Agent{Name: "ag", Version: "1.0", Status: "stoped"}
		}
	}
	all := f.hosts(t0)
	acc := Accounted(all, agent)
	if len(acc) != len(all)-len(parked) {
		t.Fatalf("accounted %d of %d hosts, want %d left out", len(acc), len(all), len(parked))
	}
	for _, h := range acc {
		if parked[h.Name] {
			t.Fatalf("%s accounted", h.Name)
		}
	}
	if got := Accounted(all, nil); len(got) != len(all) {
		t.Fatal("an unconfigured agent leaves nobody out")
	}
	// Past every deadline: counted, the stopped host of wave 1 fails.
	now := t0.Add(time.Hour)
	check := r
	if _, p := Evaluate(&check, all, now); p.Waves[0].Failed != 1 || check.Status != store.Halted {
		t.Fatalf("without the exclusion: %+v %s", p.Waves[0], check.Status)
	}
	for range 2 * len(r.Waves) {
		out, p := Evaluate(&r, acc, now)
		n := 0
		for _, w := range p.Waves {
			n += w.Hosts
			if w.Failed != 0 {
				t.Fatalf("wave %+v", w)
			}
		}
		for _, h := range p.Hosts {
			if parked[h.Hostname] {
				t.Fatalf("%s in the rollout's hosts", h.Hostname)
			}
		}
		if n != len(acc) || out == HaltedNow {
			t.Fatalf("waves hold %d hosts, want %d; outcome %v %s", n, len(acc), out, r.Reason)
		}
		now = now.Add(time.Minute)
	}
	if r.Status != store.Completed {
		t.Fatalf("status %s wave %d, want completed", r.Status, r.Wave)
	}
}

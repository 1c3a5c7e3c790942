package collect

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shirou/gopsutil/v4/cpu"
)

func TestComputeCPURates(t *testing.T) {
	base := cpu.TimesStat{User: 100, Nice: 10, System: 50, Idle: 800, Iowait: 20, Irq: 5, Softirq: 5, Steal: 10, Guest: 3}
	cases := []struct {
		name string
		prev cpu.TimesStat
		cur  cpu.TimesStat
		ok   bool
		want CPURates
	}{
		{
			name: "all idle",
			prev: base,
			cur:  add(base, cpu.TimesStat{Idle: 100}),
			ok:   true,
			want: CPURates{Idle: 100, Busy: 0},
		},
		{
			name: "mixed over the whole interval",
			prev: base,
			// total delta = 20+5+10+50+5+3+2+5 = 100; guest 4 is part of user
			cur:  add(base, cpu.TimesStat{User: 20, Nice: 5, System: 10, Idle: 50, Iowait: 5, Irq: 3, Softirq: 2, Steal: 5, Guest: 4}),
			ok:   true,
			want: CPURates{Idle: 50, Busy: 50, User: 20, Nice: 5, System: 10, Iowait: 5, Irq: 3, Softirq: 2, Steal: 5, Guest: 4},
		},
		{
			name: "fractions",
			prev: base,
			cur:  add(base, cpu.TimesStat{User: 1, Idle: 3}),
			ok:   true,
			want: CPURates{Idle: 75, Busy: 25, User: 25},
		},
		{name: "no time passed", prev: base, cur: base, ok: false},
		{name: "counter reset", prev: base, cur: cpu.TimesStat{User: 1, Idle: 1}, ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ComputeCPURates(tc.prev, tc.cur)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			gv := []float64{got.Idle, got.Busy, got.User, got.Nice, got.System, got.Iowait, got.Irq, got.Softirq, got.Steal, got.Guest}
			wv := []float64{tc.want.Idle, tc.want.Busy, tc.want.User, tc.want.Nice, tc.want.System, tc.want.Iowait, tc.want.Irq, tc.want.Softirq, tc.want.Steal, tc.want.Guest}
			for i := range gv {
				if math.Abs(gv[i]-wv[i]) > 1e-9 {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

func add(a, d cpu.TimesStat) cpu.TimesStat {
	a.User += d.User
	a.Nice += d.Nice
	a.System += d.System
	a.Idle += d.Idle
	a.Iowait += d.Iowait
	a.Irq += d.Irq
	a.Softirq += d.Softirq
	a.Steal += d.Steal
	a.Guest += d.Guest
	return a
}

var allMetrics = []string{
	"agent.alive",
	"cpu.idle", "cpu.busy", "cpu.user", "cpu.nice", "cpu.system", "cpu.iowait", "cpu.irq", "cpu.softirq", "cpu.steal", "cpu.guest",
	"mem.memtotal", "mem.memused", "mem.memfree", "mem.swaptotal", "mem.swapused", "mem.swapfree",
	"mem.memfree.percent", "mem.memused.percent", "mem.swapfree.percent", "mem.swapused.percent",
	"load.1min", "load.5min", "load.15min",
}

func newCollector(t *testing.T, tags map[string]string) (*Collector, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	return New("host01", tags, 60, m, slog.New(slog.NewTextHandler(io.Discard, nil))), m
}

func TestCollectEveryMetric(t *testing.T) {
	c, m := newCollector(t, map[string]string{"role": "web", "dc": "eu1"})
	ctx := context.Background()
	c.Prime(ctx)
	// The first collection after priming may see no CPU tick yet: keep
	// collecting (burning a little CPU) until the rates appear.
	var pts []proto.Point
	deadline := time.Now().Add(10 * time.Second)
	for {
		spin := time.Now().Add(20 * time.Millisecond)
		for time.Now().Before(spin) {
		}
		pts = c.Collect(ctx, 1_700_000_040)
		if len(pts) == len(allMetrics) || time.Now().After(deadline) {
			break
		}
	}
	got := map[string]proto.Point{}
	for _, p := range pts {
		got[p.Metric] = p
	}
	for _, name := range allMetrics {
		p, ok := got[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if p.Endpoint != "host01" || p.Timestamp != 1_700_000_040 || p.Step != 60 || p.Type != proto.Gauge {
			t.Errorf("%s: bad point %+v", name, p)
		}
		if proto.FormatTags(p.Tags) != "dc=eu1,role=web" {
			t.Errorf("%s: tags %q", name, proto.FormatTags(p.Tags))
		}
		if math.IsNaN(p.Value) || p.Value < 0 {
			t.Errorf("%s: value %v", name, p.Value)
		}
		if r := proto.ValidatePoint(&p, 1_700_000_040); r != proto.OK {
			t.Errorf("%s: invalid: %v", name, r)
		}
	}
	if len(pts) != len(allMetrics) {
		t.Fatalf("got %d points, want %d", len(pts), len(allMetrics))
	}
	pct := []string{"cpu.idle", "cpu.busy", "cpu.user", "cpu.system", "mem.memfree.percent", "mem.memused.percent", "mem.swapfree.percent", "mem.swapused.percent"}
	for _, n := range pct {
		if v := got[n].Value; v < 0 || v > 100.0001 {
			t.Errorf("%s = %v, not a percentage", n, v)
		}
	}
	if s := got["cpu.idle"].Value + got["cpu.busy"].Value; math.Abs(s-100) > 1e-6 {
		t.Errorf("idle+busy = %v", s)
	}
	if got["agent.alive"].Value != 1 {
		t.Error("agent.alive != 1")
	}
	if got["mem.memtotal"].Value <= 0 || got["mem.memused"].Value+got["mem.memfree"].Value != got["mem.memtotal"].Value {
		t.Errorf("mem: total %v used %v free %v", got["mem.memtotal"].Value, got["mem.memused"].Value, got["mem.memfree"].Value)
	}
	if got["mem.swaptotal"].Value == 0 && (got["mem.swapfree.percent"].Value != 0 || got["mem.swapused.percent"].Value != 0) {
		t.Error("no swap: percents must be 0")
	}
	if v := testutil.ToFloat64(m.PointsCollected); v < float64(len(allMetrics)) {
		t.Errorf("points collected = %v", v)
	}
}

// Without a priming snapshot the first collection has no CPU rates.
func TestFirstCollectionOnlyPrimes(t *testing.T) {
	c, _ := newCollector(t, nil)
	pts := c.Collect(context.Background(), 60)
	for _, p := range pts {
		if len(p.Metric) > 4 && p.Metric[:4] == "cpu." {
			t.Fatalf("first collection produced %s", p.Metric)
		}
	}
}

func TestNextBoundary(t *testing.T) {
	cases := []struct {
		now  time.Time
		step int
		want int64
	}{
		{time.Unix(119, 500), 60, 120},
		{time.Unix(120, 0), 60, 180},
		{time.Unix(121, 0), 7, 126},
	}
	for _, tc := range cases {
		if got := NextBoundary(tc.now, tc.step); got.Unix() != tc.want || got.Nanosecond() != 0 {
			t.Errorf("NextBoundary(%v, %d) = %v, want %d", tc.now.Unix(), tc.step, got.Unix(), tc.want)
		}
	}
}

// Run collects on step boundaries with aligned timestamps.
func TestRunAlignedTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newCollector(t, nil)
		var mu sync.Mutex
		var stamps []int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		time.Sleep(17 * time.Second) // start mid-step
		go func() {
			defer close(done)
			c.Run(ctx, func(pts []proto.Point) {
				mu.Lock()
				stamps = append(stamps, pts[0].Timestamp)
				mu.Unlock()
			})
		}()
		time.Sleep(3*time.Minute + time.Second)
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(stamps) != 3 {
			t.Fatalf("got %d collections, want 3: %v", len(stamps), stamps)
		}
		for i, ts := range stamps {
			if ts%60 != 0 || (i > 0 && ts-stamps[i-1] != 60) {
				t.Fatalf("timestamps not aligned one step apart: %v", stamps)
			}
		}
	})
}

// CPU counters that go backwards (a reset) cannot give rates: the step has
// no cpu.* points, and the skip is counted as a cpu collect error.
func TestCPUCounterResetIsCounted(t *testing.T) {
	c, m := newCollector(t, nil)
	c.prevCPU = &cpu.TimesStat{User: 1e12, System: 1e12, Idle: 1e12}
	before := testutil.ToFloat64(m.Errors.WithLabelValues(SourceCPU))
	pts := c.Collect(context.Background(), 60)
	for _, p := range pts {
		if strings.HasPrefix(p.Metric, "cpu.") {
			t.Fatalf("collection after a counter reset produced %s", p.Metric)
		}
	}
	if got := testutil.ToFloat64(m.Errors.WithLabelValues(SourceCPU)) - before; got != 1 {
		t.Fatalf("cpu collect errors grew by %v, want 1", got)
	}
	// The next interval starts from the new snapshot and has rates again.
	if c.prevCPU == nil || c.prevCPU.User >= 1e12 {
		t.Fatalf("the reset snapshot was not replaced")
	}
}

// Package collect gathers the agent's built-in host metrics (Open-Falcon
// names) once per step, on step boundaries.
package collect

import (
	"context"
	"log/slog"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
)

// Collector names (label "collector" of kestrel_agent_collect_errors_total).
const (
	SourceCPU  = "cpu"
	SourceMem  = "mem"
	SourceSwap = "swap"
	SourceLoad = "load"
)

// Metrics of the collectors.
type Metrics struct {
	PointsCollected prometheus.Counter
	Errors          *prometheus.CounterVec
}

// NewMetrics creates and registers the collector metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		PointsCollected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kestrel_agent_points_collected_total",
			Help: "Points produced by the built-in collectors.",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kestrel_agent_collect_errors_total",
			Help: "Failed reads of a built-in collector (cpu, mem, swap, load); its points are skipped for that step.",
		}, []string{"collector"}),
	}
	for _, s := range []string{SourceCPU, SourceMem, SourceSwap, SourceLoad} {
		m.Errors.WithLabelValues(s)
	}
	reg.MustRegister(m.PointsCollected, m.Errors)
	return m
}

// Collector produces one step's points.
type Collector struct {
	hostname string
	step     int32
	tags     []proto.Tag
	m        *Metrics
	log      *slog.Logger
	rl       *ratelog.Limiter

	prevCPU *cpu.TimesStat
}

// New returns a collector for hostname with default tags (added to every
// point) and step in seconds.
func New(hostname string, tags map[string]string, step int, m *Metrics, log *slog.Logger) *Collector {
	return &Collector{
		hostname: hostname,
		step:     int32(step),
		tags:     proto.TagsFromMap(tags),
		m:        m,
		log:      log,
		rl:       ratelog.New(10 * time.Second),
	}
}

func (c *Collector) fail(source string, err error) {
	c.m.Errors.WithLabelValues(source).Inc()
	if ok, suppressed := c.rl.Allow(source); ok {
		c.log.Warn("collect failed", "collector", source, "err", err, "suppressed", suppressed)
	}
}

// Prime takes the first CPU snapshot; CPU rates appear from the next
// Collect on.
func (c *Collector) Prime(ctx context.Context) {
	c.readCPU(ctx)
}

func (c *Collector) readCPU(ctx context.Context) (prev, cur *cpu.TimesStat) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil || len(ts) == 0 {
		if err == nil {
			err = errNoCPU
		}
		c.fail(SourceCPU, err)
		return nil, nil
	}
	prev, cur = c.prevCPU, &ts[0]
	c.prevCPU = cur
	return prev, cur
}

// Collect reads every collector and returns its points stamped ts (the
// caller aligns ts to the step). A collector that fails is counted and
// skipped.
func (c *Collector) Collect(ctx context.Context, ts int64) []proto.Point {
	pts := make([]proto.Point, 0, 32)
	add := func(metric string, v float64) {
		pts = append(pts, proto.Point{
			Endpoint:  c.hostname,
			Metric:    metric,
			Tags:      c.tags,
			Value:     v,
			Timestamp: ts,
			Type:      proto.Gauge,
			Step:      c.step,
		})
	}
	add("agent.alive", 1)

	if prev, cur := c.readCPU(ctx); prev != nil {
		if r, ok := ComputeCPURates(*prev, *cur); ok {
			add("cpu.idle", r.Idle)
			add("cpu.busy", r.Busy)
			add("cpu.user", r.User)
			add("cpu.nice", r.Nice)
			add("cpu.system", r.System)
			add("cpu.iowait", r.Iowait)
			add("cpu.irq", r.Irq)
			add("cpu.softirq", r.Softirq)
			add("cpu.steal", r.Steal)
			add("cpu.guest", r.Guest)
		} else {
			// A counter went backwards (or no time passed): the rates of
			// this interval cannot be computed; count and log it.
			c.fail(SourceCPU, errCPUInterval)
		}
	}

	if vm, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		c.fail(SourceMem, err)
	} else {
		free := vm.Available // MemAvailable when the kernel has it
		used := vm.Total - min(free, vm.Total)
		add("mem.memtotal", float64(vm.Total))
		add("mem.memused", float64(used))
		add("mem.memfree", float64(free))
		add("mem.memfree.percent", percent(free, vm.Total))
		add("mem.memused.percent", percent(used, vm.Total))
	}

	if sw, err := mem.SwapMemoryWithContext(ctx); err != nil {
		c.fail(SourceSwap, err)
	} else {
		add("mem.swaptotal", float64(sw.Total))
		add("mem.swapused", float64(sw.Used))
		add("mem.swapfree", float64(sw.Free))
		add("mem.swapfree.percent", percent(sw.Free, sw.Total))
		add("mem.swapused.percent", percent(sw.Used, sw.Total))
	}

	if la, err := load.AvgWithContext(ctx); err != nil {
		c.fail(SourceLoad, err)
	} else {
		add("load.1min", la.Load1)
		add("load.5min", la.Load5)
		add("load.15min", la.Load15)
	}
	c.m.PointsCollected.Add(float64(len(pts)))
	return pts
}

// percent is part/total*100, and 0 when total is 0 (no swap), as
// Open-Falcon reports it.
func percent(part, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(part) / float64(total) * 100
}

// NextBoundary returns the first step boundary (unix time multiple of
// step) strictly after now.
func NextBoundary(now time.Time, step int) time.Time {
	s := int64(step) * int64(time.Second)
	n := now.UnixNano()
	return time.Unix(0, n-n%s+s)
}

// Run primes the CPU snapshot, then collects at every step boundary until
// ctx is done, handing each step's points to sink. The timestamp is taken
// when the collection starts and aligned to the step.
func (c *Collector) Run(ctx context.Context, sink func([]proto.Point)) {
	c.Prime(ctx)
	for {
		t := time.NewTimer(time.Until(NextBoundary(time.Now(), int(c.step))))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ts := proto.AlignTimestamp(time.Now().Unix(), c.step)
		sink(c.Collect(ctx, ts))
	}
}

package collect

import "github.com/shirou/gopsutil/v4/cpu"

// CPURates are the cpu.* percentages over one interval.
type CPURates struct {
	Idle, Busy, User, Nice, System, Iowait, Irq, Softirq, Steal, Guest float64
}

// ComputeCPURates returns the percentages of time spent in each state
// between two cumulative snapshots of the total CPU times (prev taken
// before cur). The total is user+nice+system+idle+iowait+irq+softirq+steal:
// Linux already counts guest time inside user, so guest is reported but not
// added again. ok is false when no time passed or a counter went backwards
// (a reset): the caller then skips this interval.
func ComputeCPURates(prev, cur cpu.TimesStat) (r CPURates, ok bool) {
	d := func(a, b float64) float64 { return b - a }
	du := d(prev.User, cur.User)
	dn := d(prev.Nice, cur.Nice)
	ds := d(prev.System, cur.System)
	di := d(prev.Idle, cur.Idle)
	dw := d(prev.Iowait, cur.Iowait)
	dirq := d(prev.Irq, cur.Irq)
	dsirq := d(prev.Softirq, cur.Softirq)
	dst := d(prev.Steal, cur.Steal)
	dg := d(prev.Guest, cur.Guest)
	for _, v := range []float64{du, dn, ds, di, dw, dirq, dsirq, dst, dg} {
		if v < 0 {
			return CPURates{}, false
		}
	}
	total := du + dn + ds + di + dw + dirq + dsirq + dst
	if total <= 0 {
		return CPURates{}, false
	}
	pct := func(v float64) float64 { return v / total * 100 }
	r = CPURates{
		Idle:    pct(di),
		User:    pct(du),
		Nice:    pct(dn),
		System:  pct(ds),
		Iowait:  pct(dw),
		Irq:     pct(dirq),
		Softirq: pct(dsirq),
		Steal:   pct(dst),
		Guest:   pct(dg),
	}
	r.Busy = 100 - r.Idle
	return r, true
}

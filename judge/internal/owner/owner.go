// Package owner tells the judge which partitions of the shared ring it
// serves, and since when.
//
// Transfers and judges compute the same ring from the same member messages
// and the same parameters (the KV bucket), so a judge knows which
// partitions (and so which series) are its own. It serves a partition
// only while it owns it in its own view, and only after a settle period
// from the moment it gained it: another judge that owned the partition
// before may still be finishing points sent under the old ring (its view
// lags by the delivery of one member message, or one heartbeat), and the
// settle period keeps the two from judging the same series at once.
//
// Every period of ownership has its own generation number (unique over the
// process). A series remembers the generation its window and alarm states
// were filled under; when the partition's generation is different, the
// judge did not own the series throughout, so the window is dropped and
// the states are read again from Redis before anything is decided.
//
// A judge that loses its NATS connection, or stops hearing its own
// heartbeats, may have been taken out of the ring by the others without
// knowing it: it owns nothing until it hears them again, and then gains
// its partitions anew (new generations, settle, fresh states).
package owner

import (
	"sync"
	"sync/atomic"
	"time"
)

// Ring is the part of a ring snapshot the tracker reads.
type Ring interface {
	PartitionCount() int
	OwnerOf(partition int) (string, bool)
}

// Table is an immutable snapshot of the partitions this judge serves.
type Table struct {
	parts int
	owned []bool
	ready []int64  // unix ns from which an owned partition is served
	gen   []uint64 // ownership period of each partition (0: never owned)
	n     int      // owned partitions
}

// Partition returns the partition of a series from the xxhash64 of its
// series key (the ring's FindPartitionID).
func (t *Table) Partition(h uint64) int { return int(h % uint64(t.parts)) }

// Serves reports whether points of partition p are judged here at now
// (unix ns): owned, and settled.
func (t *Table) Serves(p int, now int64) bool { return t.owned[p] && now >= t.ready[p] }

// Owns reports whether p is owned (settled or not).
func (t *Table) Owns(p int) bool { return t.owned[p] }

// Gen returns the generation of p's current (or last) ownership period.
func (t *Table) Gen(p int) uint64 { return t.gen[p] }

// Owned returns how many partitions are owned.
func (t *Table) Owned() int { return t.n }

// Partitions returns the partition count.
func (t *Table) Partitions() int { return t.parts }

// Change counts what one update did.
type Change struct {
	Gained, Lost int
}

// Tracker keeps the current Table. Update methods are serialised; Table
// is lock free.
type Tracker struct {
	self   string
	settle time.Duration

	mu      sync.Mutex
	ring    Ring
	down    Reason // why the judge owns nothing now (0: it owns its ring partitions)
	nextGen uint64

	cur atomic.Pointer[Table]
}

// Reason is why a judge owns nothing for a while (a bit set: each is
// suspended and resumed on its own).
type Reason uint8

// Reasons for owning nothing.
const (
	Disconnected Reason = 1 << iota // NATS connection lost: others may have moved the series
	WarmingUp                       // members not all heard yet since start or reconnect
	ParamsDiffer                    // the KV bucket's ring parameters differ from the config
)

// New returns a tracker for node self that owns nothing yet and is
// connected.
func New(self string, settle time.Duration) *Tracker {
	t := &Tracker{self: self, settle: settle}
	t.cur.Store(&Table{parts: 1, owned: []bool{false}, ready: []int64{0}, gen: []uint64{0}})
	return t
}

// Table returns the current snapshot (never nil).
func (t *Tracker) Table() *Table { return t.cur.Load() }

// Settle returns the settle period.
func (t *Tracker) Settle() time.Duration { return t.settle }

// Apply adopts a new ring seen at now.
func (t *Tracker) Apply(r Ring, now time.Time) Change {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring = r
	return t.rebuild(now)
}

// Suspend makes the judge own nothing for reason r (NATS connection lost,
// members not all heard, ring parameters differ): others may move its
// series meanwhile.
func (t *Tracker) Suspend(r Reason, now time.Time) Change {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down&r == r {
		return Change{}
	}
	t.down |= r
	return t.rebuild(now)
}

// Resume ends the suspension for reason r; when no reason is left, the
// partitions of the current ring are gained anew (new generations, settle
// period).
func (t *Tracker) Resume(r Reason, now time.Time) Change {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down&r == 0 {
		return Change{}
	}
	t.down &^= r
	return t.rebuild(now)
}

// rebuild computes the table from t.ring and t.up; t.mu held.
func (t *Tracker) rebuild(now time.Time) Change {
	prev := t.cur.Load()
	parts := 1
	if t.ring != nil && t.ring.PartitionCount() > 0 {
		parts = t.ring.PartitionCount()
	}
	nt := &Table{parts: parts, owned: make([]bool, parts), ready: make([]int64, parts), gen: make([]uint64, parts)}
	samePartitioning := prev.parts == parts
	var ch Change
	for p := 0; p < parts; p++ {
		own := false
		if t.down == 0 && t.ring != nil {
			o, ok := t.ring.OwnerOf(p)
			own = ok && o == t.self
		}
		was := samePartitioning && prev.owned[p]
		switch {
		case own && was:
			nt.owned[p], nt.ready[p], nt.gen[p] = true, prev.ready[p], prev.gen[p]
		case own:
			t.nextGen++
			nt.owned[p], nt.ready[p], nt.gen[p] = true, now.Add(t.settle).UnixNano(), t.nextGen
			ch.Gained++
		default:
			if samePartitioning {
				nt.gen[p] = prev.gen[p]
			}
			if was {
				ch.Lost++
			}
		}
		if nt.owned[p] {
			nt.n++
		}
	}
	if !samePartitioning {
		ch.Lost += prev.n
	}
	t.cur.Store(nt)
	return ch
}

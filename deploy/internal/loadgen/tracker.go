package loadgen

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Tracker holds, per sequence number, when the point was published and
// when a judge acknowledged it. Sequence numbers are handed out in blocks
// (one per batch); each index is written by one goroutine only: pubNS by
// the publisher that owns the block, ackNS by the observer.
type Tracker struct {
	next      atomic.Uint64
	pubNS     []int64
	published []bool // the stream acknowledged the publish
	ackNS     []int64
	acked     atomic.Int64 // distinct points acknowledged by a judge
	dupAcks   atomic.Int64 // acknowledgements of points already acknowledged
	foreign   atomic.Int64 // acknowledged sequence numbers this run never issued
	epoch     time.Time

	mu     sync.Mutex
	stored []StoredBatch // published batches and their stream sequence
}

// StoredBatch is a published batch: sequence numbers [First, First+N) are
// in the stream message StreamSeq.
type StoredBatch struct {
	First     uint64
	N         int
	StreamSeq uint64
	Unacked   int // filled by UnackedBatches
}

// NewTracker makes room for max points.
func NewTracker(max int) *Tracker {
	return &Tracker{pubNS: make([]int64, max), published: make([]bool, max), ackNS: make([]int64, max), epoch: time.Now()}
}

// Cap returns how many sequence numbers the tracker holds.
func (t *Tracker) Cap() int { return len(t.pubNS) }

// Reserve hands out n consecutive sequence numbers starting at the
// returned one; ok is false when the tracker is full.
func (t *Tracker) Reserve(n int) (first uint64, ok bool) {
	end := t.next.Add(uint64(n))
	if end > uint64(len(t.pubNS)) {
		return 0, false
	}
	return end - uint64(n), true
}

// Now returns monotonic nanoseconds since the tracker was made (never 0).
func (t *Tracker) Now() int64 { return int64(time.Since(t.epoch)) + 1 }

// MarkSent records the publish time of [first, first+n).
func (t *Tracker) MarkSent(first uint64, n int, ns int64) {
	for s := first; s < first+uint64(n); s++ {
		t.pubNS[s] = ns
	}
}

// MarkPublished records that the stream acknowledged [first, first+n).
func (t *Tracker) MarkPublished(first uint64, n int) {
	for s := first; s < first+uint64(n); s++ {
		t.published[s] = true
	}
}

// MarkStored records that [first, first+n) are in stream message seq.
func (t *Tracker) MarkStored(first uint64, n int, seq uint64) {
	t.mu.Lock()
	t.stored = append(t.stored, StoredBatch{First: first, N: n, StreamSeq: seq})
	t.mu.Unlock()
}

// UnackedBatches returns the stored batches holding points (from skip on)
// that no judge acknowledged, with how many; call it only after the
// observer stopped.
func (t *Tracker) UnackedBatches(skip uint64) []StoredBatch {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []StoredBatch
	for _, b := range t.stored {
		n := 0
		for s := max(b.First, skip); s < b.First+uint64(b.N); s++ {
			if t.ackNS[s] == 0 {
				n++
			}
		}
		if n > 0 {
			b.Unacked = n
			out = append(out, b)
		}
	}
	return out
}

// Ack records a judge acknowledgement of seq at ns. Only the observer
// goroutine calls it.
func (t *Tracker) Ack(seq uint64, ns int64) {
	if seq >= uint64(len(t.ackNS)) || seq >= t.next.Load() {
		t.foreign.Add(1)
		return
	}
	if t.ackNS[seq] != 0 {
		t.dupAcks.Add(1)
		return
	}
	t.ackNS[seq] = ns
	t.acked.Add(1)
}

// Acked returns the number of distinct points acknowledged so far.
func (t *Tracker) Acked() int64 { return t.acked.Load() }

// Stats summarises the run; call it only after publishers and the
// observer have stopped.
type Stats struct {
	Issued, Published, Acked, AckedUnpublished int64
	Unacked                                    int64 // published, no judge acknowledgement seen
	DupAcks, Foreign                           int64
	FirstPub, LastPub, LastAck                 time.Duration // since the epoch
	AckedInWindow                              int64         // acknowledged before LastPub
	P50, P90, P99, Max                         time.Duration // publish to judge acknowledgement
}

// Stats computes the summary of the sequence numbers from skip on (the
// ones before are warm-up probes).
func (t *Tracker) Stats(skip uint64) Stats {
	var st Stats
	n := min(t.next.Load(), uint64(len(t.pubNS)))
	st.Issued = int64(n - min(skip, n))
	lat := make([]int64, 0, n)
	first := int64(-1)
	var lastPub, lastAck int64
	for s := skip; s < n; s++ {
		p, a := t.pubNS[s], t.ackNS[s]
		if p != 0 && (first < 0 || p < first) {
			first = p
		}
		lastPub = max(lastPub, p)
		if t.published[s] {
			st.Published++
		}
		switch {
		case a != 0:
			st.Acked++
			if !t.published[s] {
				st.AckedUnpublished++
			}
			lastAck = max(lastAck, a)
			lat = append(lat, a-p)
		case t.published[s]:
			st.Unacked++
		}
	}
	for s := skip; s < n; s++ {
		if a := t.ackNS[s]; a != 0 && a <= lastPub {
			st.AckedInWindow++
		}
	}
	st.DupAcks, st.Foreign = t.dupAcks.Load(), t.foreign.Load()
	if first > 0 {
		st.FirstPub = time.Duration(first)
	}
	st.LastPub, st.LastAck = time.Duration(lastPub), time.Duration(lastAck)
	if len(lat) > 0 {
		slices.Sort(lat)
		st.P50 = time.Duration(percentile(lat, 0.50))
		st.P90 = time.Duration(percentile(lat, 0.90))
		st.P99 = time.Duration(percentile(lat, 0.99))
		st.Max = time.Duration(lat[len(lat)-1])
	}
	return st
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

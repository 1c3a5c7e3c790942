// Package window keeps the newest points of one series in a fixed-size ring
// buffer, in time order. Pushing a newer point allocates nothing and can be
// undone (Push/Rollback), so the judge can stage a point, evaluate and write
// alarms, and roll back when a write fails. A late point (older than the
// newest) is inserted in time order (Locate, Insert); the judge undoes that
// by restoring a Snapshot.
package window

// Point is one (timestamp, value) sample of a series.
type Point struct {
	TS    int64   `json:"timestamp"`
	Value float64 `json:"value"`
}

// Ring holds the newest Cap() points of a series, newest first.
type Ring struct {
	buf  []Point
	head int // index of the newest point
	n    int
}

// New returns a ring holding up to capacity points (capacity >= 1).
func New(capacity int) *Ring {
	if capacity < 1 {
		capacity = 1
	}
	return &Ring{buf: make([]Point, capacity), head: -1}
}

// Init makes r an empty ring over buf (len(buf) >= 1), so many rings can
// share one allocation.
func (r *Ring) Init(buf []Point) {
	r.buf = buf
	r.head = -1
	r.n = 0
}

// Cap returns how many points the ring keeps.
func (r *Ring) Cap() int { return len(r.buf) }

// Len returns how many points the ring holds.
func (r *Ring) Len() int { return r.n }

// Newest returns the newest point, false when empty.
func (r *Ring) Newest() (Point, bool) {
	if r.n == 0 {
		return Point{}, false
	}
	return r.buf[r.head], true
}

// At returns the i-th newest point (0 = newest); i must be < Len().
func (r *Ring) At(i int) Point {
	j := r.head - i
	if j < 0 {
		j += len(r.buf)
	}
	return r.buf[j]
}

// Undo restores a ring to its state before one Push.
type Undo struct {
	head, n int
	old     Point
}

// Push adds p as the newest point, dropping the oldest when full, and
// returns what Rollback needs to take it back. It does not check order:
// see Accepts.
func (r *Ring) Push(p Point) Undo {
	u := Undo{head: r.head, n: r.n}
	h := r.head + 1
	if h == len(r.buf) {
		h = 0
	}
	u.old = r.buf[h]
	r.buf[h] = p
	r.head = h
	if r.n < len(r.buf) {
		r.n++
	}
	return u
}

// Rollback undoes the Push that returned u (only the latest push).
func (r *Ring) Rollback(u Undo) {
	if r.head >= 0 {
		r.buf[r.head] = u.old
	}
	r.head = u.head
	r.n = u.n
}

// Accepts reports whether a point at ts is newer than the newest point.
func (r *Ring) Accepts(ts int64) bool {
	if r.n == 0 {
		return true
	}
	return ts > r.buf[r.head].TS
}

// Placement says where a point goes in a ring (Locate).
type Placement uint8

// Placements.
const (
	Newest    Placement = iota // newer than every point (or the ring is empty): Push
	Late                       // older than the newest: Insert at the position Locate gives
	Duplicate                  // a point with the same timestamp is held: the first one is kept
	TooOld                     // the ring is full and the point is older than its oldest
)

// Locate returns where a point at ts goes and, for Late, its position:
// the number of held points newer than it (1..Len(); Len() when it is older
// than all and the ring is not full).
func (r *Ring) Locate(ts int64) (Placement, int) {
	if r.n == 0 || ts > r.buf[r.head].TS {
		return Newest, 0
	}
	for i := 0; i < r.n; i++ {
		switch t := r.At(i).TS; {
		case ts == t:
			return Duplicate, i
		case ts > t:
			return Late, i
		}
	}
	if r.n == len(r.buf) {
		return TooOld, r.n
	}
	return Late, r.n
}

// Insert puts p at position k (the number of points newer than it, from
// Locate), dropping the oldest point when the ring is full. Insert(0, p)
// is Push without its undo. It does not check order; undo it with
// Snapshot/Restore.
func (r *Ring) Insert(k int, p Point) {
	r.Push(p)
	// The newest k points move one place towards the head; p goes after them.
	j := r.head
	for range k {
		prev := j - 1
		if prev < 0 {
			prev += len(r.buf)
		}
		r.buf[j] = r.buf[prev]
		j = prev
	}
	r.buf[j] = p
}

// Snapshot appends the points newest first to dst[:0] and returns it: what
// Restore needs to undo any change. A dst with Cap() capacity is never
// grown.
func (r *Ring) Snapshot(dst []Point) []Point { return r.AppendTo(dst[:0]) }

// Restore makes the ring hold exactly the points of a Snapshot.
func (r *Ring) Restore(snap []Point) {
	r.n = min(len(snap), len(r.buf))
	r.head = r.n - 1
	for i := 0; i < r.n; i++ {
		r.buf[r.head-i] = snap[i]
	}
}

// AppendTo appends the points newest first to dst.
func (r *Ring) AppendTo(dst []Point) []Point {
	for i := 0; i < r.n; i++ {
		dst = append(dst, r.At(i))
	}
	return dst
}

// Values fills vals and ts with the raw values and timestamps of the from-th
// newest point and the older ones, newest first, and returns how many were
// written (at most len(vals)). from = 0 is the whole window; from = i is the
// window as it looks from point i (what a rule evaluated as of that point
// sees).
func (r *Ring) Values(from int, vals []float64, ts []int64) int {
	n := min(r.n-from, len(vals), len(ts))
	if n <= 0 || from < 0 {
		return 0
	}
	vals, ts = vals[:n], ts[:n]
	j := r.head - from
	if j < 0 {
		j += len(r.buf)
	}
	for i := range vals {
		p := r.buf[j]
		vals[i], ts[i] = p.Value, p.TS
		if j--; j < 0 {
			j = len(r.buf) - 1
		}
	}
	return n
}

// Rates fills vals with the per-second rates between consecutive points
// from the from-th newest point on, newest first:
// (v[i]-v[i+1])/(t[i]-t[i+1]), and ts with the timestamp of the older point
// of each rate (t[i+1]: the oldest raw point that rate uses). When resets is
// true (a COUNTER) an interval over which the value went down (the counter
// was reset) gives no rate: it is skipped, and the next value is the rate
// of the interval before it. It returns how many rates were written
// (Len()-from-1 at most, and at most len(vals)).
func (r *Ring) Rates(from int, resets bool, vals []float64, ts []int64) int {
	lim := min(len(vals), len(ts))
	n := 0
	if from < 0 || from >= r.n {
		return 0
	}
	a := r.At(from)
	for i := from + 1; i < r.n && n < lim; i++ {
		b := r.At(i)
		if !resets || a.Value >= b.Value {
			vals[n] = (a.Value - b.Value) / float64(a.TS-b.TS)
			ts[n] = b.TS
			n++
		}
		a = b
	}
	return n
}

// Resets returns how many intervals next to the i-th newest point go down
// (a COUNTER reset), minus the one between its neighbours when that went
// down too: the resets point i brought in. For i = 0 that is 1 when the
// newest point is below the one before it.
func (r *Ring) Resets(i int) int {
	if i < 0 || i >= r.n {
		return 0
	}
	p := r.At(i).Value
	hasOlder, hasNewer := i+1 < r.n, i > 0
	var older, newer float64
	if hasOlder {
		older = r.At(i + 1).Value
	}
	if hasNewer {
		newer = r.At(i - 1).Value
	}
	n := 0
	if hasOlder && p < older {
		n++
	}
	if hasNewer && newer < p {
		n++
	}
	if hasOlder && hasNewer && newer < older {
		n--
	}
	return n
}

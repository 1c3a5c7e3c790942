// Package window keeps the newest points of one series in a fixed-size ring
// buffer. Pushing a point allocates nothing; a push can be undone, so the
// judge can stage a point, evaluate and write alarms, and roll back when a
// write fails.
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

// AppendTo appends the points newest first to dst.
func (r *Ring) AppendTo(dst []Point) []Point {
	for i := 0; i < r.n; i++ {
		dst = append(dst, r.At(i))
	}
	return dst
}

// Values fills vals and ts with the points newest first (raw values) and
// returns how many were written (at most len(vals)).
func (r *Ring) Values(vals []float64, ts []int64) int {
	n := min(r.n, len(vals), len(ts))
	for i := 0; i < n; i++ {
		p := r.At(i)
		vals[i], ts[i] = p.Value, p.TS
	}
	return n
}

// Rates fills vals and ts with the per-second rates between consecutive
// points, newest first: vals[i] = (v[i]-v[i+1])/(t[i]-t[i+1]) at time
// t[i]. It returns how many rates were written (Len()-1 at most).
func (r *Ring) Rates(vals []float64, ts []int64) int {
	n := min(r.n-1, len(vals), len(ts))
	for i := 0; i < n; i++ {
		a, b := r.At(i), r.At(i+1)
		vals[i] = (a.Value - b.Value) / float64(a.TS-b.TS)
		ts[i] = a.TS
	}
	return max(n, 0)
}

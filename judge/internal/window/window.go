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

// Buffer holds the newest Cap() points of a series, newest first (a ring
// buffer: one series' window, not the hash ring of package ring).
type Buffer struct {
	buf  []Point
	head int // index of the newest point
	n    int
}

// New returns a buffer holding up to capacity points (capacity >= 1).
func New(capacity int) *Buffer {
	if capacity < 1 {
		capacity = 1
	}
	return &Buffer{buf: make([]Point, capacity), head: -1}
}

// Init makes w an empty buffer over buf (len(buf) >= 1), so many buffers
// can share one allocation.
func (w *Buffer) Init(buf []Point) {
	w.buf = buf
	w.head = -1
	w.n = 0
}

// Cap returns how many points the buffer keeps.
func (w *Buffer) Cap() int { return len(w.buf) }

// Len returns how many points the buffer holds.
func (w *Buffer) Len() int { return w.n }

// Newest returns the newest point, false when empty.
func (w *Buffer) Newest() (Point, bool) {
	if w.n == 0 {
		return Point{}, false
	}
	return w.buf[w.head], true
}

// At returns the i-th newest point (0 = newest); i must be < Len().
func (w *Buffer) At(i int) Point {
	j := w.head - i
	if j < 0 {
		j += len(w.buf)
	}
	return w.buf[j]
}

// Undo restores a buffer to its state before one Push.
type Undo struct {
	head, n int
	old     Point
}

// Push adds p as the newest point, dropping the oldest when full, and
// returns what Rollback needs to take it back. It does not check order:
// see Accepts.
func (w *Buffer) Push(p Point) Undo {
	u := Undo{head: w.head, n: w.n}
	h := w.head + 1
	if h == len(w.buf) {
		h = 0
	}
	u.old = w.buf[h]
	w.buf[h] = p
	w.head = h
	if w.n < len(w.buf) {
		w.n++
	}
	return u
}

// Rollback undoes the Push that returned u (only the latest push).
func (w *Buffer) Rollback(u Undo) {
	if w.head >= 0 {
		w.buf[w.head] = u.old
	}
	w.head = u.head
	w.n = u.n
}

// Accepts reports whether a point at ts is newer than the newest point.
func (w *Buffer) Accepts(ts int64) bool {
	if w.n == 0 {
		return true
	}
	return ts > w.buf[w.head].TS
}

// Placement says where a point goes in a buffer (Locate).
type Placement uint8

// Placements.
const (
	Newest    Placement = iota // newer than every point (or the buffer is empty): Push
	Late                       // older than the newest: Insert at the position Locate gives
	Duplicate                  // a point with the same timestamp is held: the first one is kept
	TooOld                     // the buffer is full and the point is older than its oldest
)

// Locate returns where a point at ts goes and, for Late, its position:
// the number of held points newer than it (1..Len(); Len() when it is older
// than all and the buffer is not full).
func (w *Buffer) Locate(ts int64) (Placement, int) {
	if w.n == 0 || ts > w.buf[w.head].TS {
		return Newest, 0
	}
	for i := 0; i < w.n; i++ {
		switch t := w.At(i).TS; {
		case ts == t:
			return Duplicate, i
		case ts > t:
			return Late, i
		}
	}
	if w.n == len(w.buf) {
		return TooOld, w.n
	}
	return Late, w.n
}

// Insert puts p at position k (the number of points newer than it, from
// Locate), dropping the oldest point when the buffer is full. Insert(0, p)
// is Push without its undo. It does not check order; undo it with
// Snapshot/Restore.
func (w *Buffer) Insert(k int, p Point) {
	w.Push(p)
	// The newest k points move one place towards the head; p goes after them.
	j := w.head
	for range k {
		prev := j - 1
		if prev < 0 {
			prev += len(w.buf)
		}
		w.buf[j] = w.buf[prev]
		j = prev
	}
	w.buf[j] = p
}

// Snapshot appends the points newest first to dst[:0] and returns it: what
// Restore needs to undo any change. A dst with Cap() capacity is never
// grown.
func (w *Buffer) Snapshot(dst []Point) []Point { return w.AppendTo(dst[:0]) }

// Restore makes the buffer hold exactly the points of a Snapshot.
func (w *Buffer) Restore(snap []Point) {
	w.n = min(len(snap), len(w.buf))
	w.head = w.n - 1
	for i := 0; i < w.n; i++ {
		w.buf[w.head-i] = snap[i]
	}
}

// AppendTo appends the points newest first to dst.
func (w *Buffer) AppendTo(dst []Point) []Point {
	for i := 0; i < w.n; i++ {
		dst = append(dst, w.At(i))
	}
	return dst
}

// Values fills vals and ts with the raw values and timestamps of the from-th
// newest point and the older ones, newest first, and returns how many were
// written (at most len(vals)). from = 0 is the whole window; from = i is the
// window as it looks from point i (what a rule evaluated as of that point
// sees).
func (w *Buffer) Values(from int, vals []float64, ts []int64) int {
	n := min(w.n-from, len(vals), len(ts))
	if n <= 0 || from < 0 {
		return 0
	}
	vals, ts = vals[:n], ts[:n]
	j := w.head - from
	if j < 0 {
		j += len(w.buf)
	}
	for i := range vals {
		p := w.buf[j]
		vals[i], ts[i] = p.Value, p.TS
		if j--; j < 0 {
			j = len(w.buf) - 1
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
func (w *Buffer) Rates(from int, resets bool, vals []float64, ts []int64) int {
	lim := min(len(vals), len(ts))
	n := 0
	if from < 0 || from >= w.n {
		return 0
	}
	a := w.At(from)
	for i := from + 1; i < w.n && n < lim; i++ {
		b := w.At(i)
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
func (w *Buffer) Resets(i int) int {
	if i < 0 || i >= w.n {
		return 0
	}
	p := w.At(i).Value
	hasOlder, hasNewer := i+1 < w.n, i > 0
	var older, newer float64
	if hasOlder {
		older = w.At(i + 1).Value
	}
	if hasNewer {
		newer = w.At(i - 1).Value
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

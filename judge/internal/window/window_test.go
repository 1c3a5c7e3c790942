package window

import (
	"reflect"
	"sort"
	"testing"
)

func TestBufferPushEvictsOldest(t *testing.T) {
	r := New(3)
	for i := int64(1); i <= 5; i++ {
		if !r.Accepts(i * 60) {
			t.Fatalf("push %d refused", i)
		}
		r.Push(Point{TS: i * 60, Value: float64(i)})
	}
	got := r.AppendTo(nil)
	want := []Point{{300, 5}, {240, 4}, {180, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if r.Accepts(300) || r.Accepts(10) {
		t.Fatal("accepted a point not newer than the newest")
	}
}

func TestBufferRollback(t *testing.T) {
	for _, pushes := range []int{0, 1, 2, 3, 7} {
		r := New(3)
		for i := 1; i <= pushes; i++ {
			r.Push(Point{TS: int64(i), Value: float64(i)})
		}
		before := r.AppendTo(nil)
		u := r.Push(Point{TS: 100, Value: 100})
		r.Rollback(u)
		if got := r.AppendTo(nil); !reflect.DeepEqual(got, before) {
			t.Fatalf("after %d pushes: rollback gave %v want %v", pushes, got, before)
		}
		// The buffer keeps working after a rollback.
		r.Push(Point{TS: 200, Value: 1})
		if p, _ := r.Newest(); p.TS != 200 {
			t.Fatalf("newest %v", p)
		}
	}
}

func TestBufferRates(t *testing.T) {
	r := New(4)
	r.Push(Point{TS: 60, Value: 100})
	r.Push(Point{TS: 120, Value: 160})
	r.Push(Point{TS: 240, Value: 400})
	vals, ts := make([]float64, 4), make([]int64, 4)
	n := r.Rates(0, true, vals, ts)
	// ts is the older raw point of each rate.
	if n != 2 || vals[0] != 2 || vals[1] != 1 || ts[0] != 120 || ts[1] != 60 {
		t.Fatalf("rates n=%d vals=%v ts=%v", n, vals, ts)
	}
	if n := New(2).Rates(0, true, vals, ts); n != 0 {
		t.Fatalf("empty buffer rates = %d", n)
	}
}

// Rates of a COUNTER skip an interval that goes down (the counter was
// reset); a DERIVE keeps the negative rate. from evaluates the window as of
// an older point. ts is the older raw point of each rate.
func TestBufferRatesResets(t *testing.T) {
	type rate struct {
		v  float64
		ts int64
	}
	// Oldest first: 100 → 160 → 40 (reset) → 100 → 220.
	pts := []Point{{60, 100}, {120, 160}, {180, 40}, {240, 100}, {300, 220}}
	cases := []struct {
		name   string
		from   int
		resets bool
		lim    int
		want   []rate
	}{
		{"derive keeps negative", 0, false, 8, []rate{{2, 240}, {1, 180}, {-2, 120}, {1, 60}}},
		{"counter skips the reset", 0, true, 8, []rate{{2, 240}, {1, 180}, {1, 60}}},
		{"counter, the N newest valid rates", 0, true, 2, []rate{{2, 240}, {1, 180}}},
		{"counter as of 240", 1, true, 8, []rate{{1, 180}, {1, 60}}},
		{"counter as of the reset point", 2, true, 8, []rate{{1, 60}}},
		{"derive as of the reset point", 2, false, 8, []rate{{-2, 120}, {1, 60}}},
		{"as of the oldest point: no rate", 4, true, 8, nil},
		{"beyond the window", 5, true, 8, nil},
	}
	r := New(6)
	for _, p := range pts {
		r.Push(p)
	}
	for _, c := range cases {
		vals, ts := make([]float64, c.lim), make([]int64, c.lim)
		n := r.Rates(c.from, c.resets, vals, ts)
		var got []rate
		for i := 0; i < n; i++ {
			got = append(got, rate{vals[i], ts[i]})
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v want %v", c.name, got, c.want)
		}
	}
	// Only a reset makes a COUNTER lose a rate: a flat interval is rate 0.
	f := New(3)
	f.Push(Point{60, 5})
	f.Push(Point{120, 5})
	vals, ts := make([]float64, 3), make([]int64, 3)
	if n := f.Rates(0, true, vals, ts); n != 1 || vals[0] != 0 {
		t.Fatalf("flat counter: n=%d vals=%v", n, vals)
	}
}

func TestBufferValuesFrom(t *testing.T) {
	r := New(4)
	for i := int64(1); i <= 6; i++ {
		r.Push(Point{TS: i * 60, Value: float64(i)})
	}
	vals, ts := make([]float64, 5), make([]int64, 5)
	if n := r.Values(0, vals, ts); n != 4 || vals[0] != 6 || vals[3] != 3 || ts[3] != 180 {
		t.Fatalf("from 0: n=%d %v %v", n, vals, ts)
	}
	if n := r.Values(2, vals, ts); n != 2 || vals[0] != 4 || vals[1] != 3 || ts[0] != 240 {
		t.Fatalf("from 2: n=%d %v %v", n, vals, ts)
	}
	if n := r.Values(4, vals, ts); n != 0 {
		t.Fatalf("from 4: n=%d", n)
	}
	if n := r.Values(1, vals[:2], ts); n != 2 || vals[0] != 5 {
		t.Fatalf("short vals: n=%d %v", n, vals)
	}
}

// Locate and Insert keep the buffer in time order, like a sorted list of the
// newest Cap() points, for every position, full or not, at every rotation.
func TestBufferLocateInsert(t *testing.T) {
	const capacity = 4
	for filled := 0; filled <= 7; filled++ {
		for ts := int64(5); ts <= int64(filled+1)*10+5; ts += 5 {
			r := New(capacity)
			var ref []Point // oldest first, every point pushed
			for i := 1; i <= filled; i++ {
				p := Point{TS: int64(i) * 10, Value: float64(i)}
				r.Push(p)
				ref = append(ref, p)
			}
			if len(ref) > capacity {
				ref = ref[len(ref)-capacity:]
			}
			p := Point{TS: ts, Value: -1}
			place, k := r.Locate(ts)
			// What the buffer must hold afterwards: ref with p, sorted,
			// the newest Cap() of them, newest first.
			var want []Point
			dup, older := false, len(ref) == capacity && ts < ref[0].TS
			for _, q := range ref {
				dup = dup || q.TS == ts
			}
			var wantPlace Placement
			switch {
			case dup:
				wantPlace = Duplicate
			case older:
				wantPlace = TooOld
			case len(ref) == 0 || ts > ref[len(ref)-1].TS:
				wantPlace = Newest
			default:
				wantPlace = Late
			}
			if place != wantPlace {
				t.Fatalf("filled %d ts %d: placement %d want %d", filled, ts, place, wantPlace)
			}
			if place == Duplicate || place == TooOld {
				continue
			}
			all := append([]Point{}, ref...)
			all = append(all, p)
			sort.Slice(all, func(i, j int) bool { return all[i].TS > all[j].TS })
			want = all[:min(len(all), capacity)]
			before := r.AppendTo(nil)
			snap := r.Snapshot(make([]Point, 0, capacity))
			r.Insert(k, p)
			if got := r.AppendTo(nil); !reflect.DeepEqual(got, want) {
				t.Fatalf("filled %d ts %d k %d: got %v want %v", filled, ts, k, got, want)
			}
			if got := r.At(k); got != p {
				t.Fatalf("filled %d ts %d: At(%d) = %v", filled, ts, k, got)
			}
			r.Restore(snap)
			if got := r.AppendTo(nil); !reflect.DeepEqual(got, before) {
				t.Fatalf("filled %d ts %d: restore gave %v want %v", filled, ts, got, before)
			}
			// The buffer keeps working after a restore.
			r.Push(Point{TS: 1000, Value: 1})
			if q, _ := r.Newest(); q.TS != 1000 || r.Len() != min(len(before)+1, capacity) {
				t.Fatalf("after restore: newest %v len %d", q, r.Len())
			}
		}
	}
}

func TestBufferResets(t *testing.T) {
	f := func(vals []float64, i, want int) {
		t.Helper()
		r := New(8)
		for j, v := range vals { // oldest first
			r.Push(Point{TS: int64(j+1) * 60, Value: v})
		}
		if got := r.Resets(i); got != want {
			t.Errorf("%v point %d: resets %d want %d", vals, i, got, want)
		}
	}
	f([]float64{10, 20}, 0, 0)
	f([]float64{20, 10}, 0, 1)
	f([]float64{20}, 0, 0)
	f([]float64{20, 10}, 1, 1)     // the older point is above the newer
	f([]float64{10, 5, 20}, 1, 1)  // 10 → 5 down, 5 → 20 up
	f([]float64{10, 30, 20}, 1, 1) // 30 → 20 down
	f([]float64{10, 15, 20}, 1, 0)
	f([]float64{30, 40, 20}, 1, 0)   // 30 → 20 went down already: 30 → 40 → 20 is still one
	f([]float64{30, 10, 20}, 1, 0)   // 30 → 10 → 20: the same one reset
	f([]float64{30, 40, 5, 6}, 2, 0) // as of an inner point, only its neighbours count
	f([]float64{30, 40, 5, 6}, 9, 0)
}

func BenchmarkPush(b *testing.B) {
	r := New(12)
	ts := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		ts += 60
		r.Push(Point{TS: ts, Value: 1})
	}
}

func BenchmarkValues(b *testing.B) {
	r := New(12)
	for i := int64(1); i <= 20; i++ {
		r.Push(Point{TS: i * 60, Value: float64(i)})
	}
	vals, ts := make([]float64, 12), make([]int64, 12)
	b.ReportAllocs()
	for b.Loop() {
		r.Values(0, vals, ts)
	}
}

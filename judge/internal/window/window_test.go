package window

import (
	"reflect"
	"testing"
)

func TestRingPushEvictsOldest(t *testing.T) {
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

func TestRingRollback(t *testing.T) {
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
		// The ring keeps working after a rollback.
		r.Push(Point{TS: 200, Value: 1})
		if p, _ := r.Newest(); p.TS != 200 {
			t.Fatalf("newest %v", p)
		}
	}
}

func TestRingRates(t *testing.T) {
	r := New(4)
	r.Push(Point{TS: 60, Value: 100})
	r.Push(Point{TS: 120, Value: 160})
	r.Push(Point{TS: 240, Value: 400})
	vals, ts := make([]float64, 4), make([]int64, 4)
	n := r.Rates(vals, ts)
	if n != 2 || vals[0] != 2 || vals[1] != 1 || ts[0] != 240 || ts[1] != 120 {
		t.Fatalf("rates n=%d vals=%v ts=%v", n, vals, ts)
	}
	if n := New(2).Rates(vals, ts); n != 0 {
		t.Fatalf("empty ring rates = %d", n)
	}
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

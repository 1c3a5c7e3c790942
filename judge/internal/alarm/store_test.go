package alarm

import (
	"context"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/judge/internal/redistest"
)

func TestLoadManyPipelined(t *testing.T) {
	r := redistest.Start(t)
	rdb := r.Client()
	ctx := context.Background()
	s := NewStore(rdb, Keys{Prefix: "kestrel:", EventListFormat: "event:p%d", EventListLen: 10, StreamKey: "kestrel:events", StreamMaxLen: 10})
	rdb.HSet(ctx, "kestrel:alarm:p", "status", "PROBLEM", "currentStep", "2", "eventTime", "120", "priority", "1")
	rdb.HSet(ctx, "kestrel:alarm:o", "status", "OK", "currentStep", "1", "eventTime", "180", "priority", "1")
	got, err := s.LoadMany(ctx, []string{"p", "absent", "o"})
	if err != nil {
		t.Fatal(err)
	}
	want := []State{{Problem, 2, 120}, {}, {OK, 1, 180}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("state %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Each agrees with Load.
	for i, id := range []string{"p", "absent", "o"} {
		one, err := s.Load(ctx, id)
		if err != nil || one != got[i] {
			t.Errorf("Load(%s) = %+v, %v; LoadMany gave %+v", id, one, err, got[i])
		}
	}
	if got, err := s.LoadMany(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no ids: %v %v", got, err)
	}
	rdb.HSet(ctx, "kestrel:alarm:bad", "status", "MAYBE")
	if _, err := s.LoadMany(ctx, []string{"p", "bad"}); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Fatalf("corrupt state: %v", err)
	}
	r.Stop()
	if _, err := s.LoadMany(ctx, []string{"p"}); err == nil {
		t.Fatal("redis down: no error")
	}
}

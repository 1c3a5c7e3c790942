package alarm

import (
	"context"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
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
	want := []State{{Status: Problem, CurrentStep: 2, EventTime: 120}, {}, {Status: OK, CurrentStep: 1, EventTime: 180}}
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
	rdb.Set(ctx, "kestrel:alarm:str", "not a hash", 0)
	got, err = s.LoadMany(ctx, []string{"p", "bad", "str"})
	if err != nil {
		t.Fatalf("unreadable states must not fail the load: %v", err)
	}
	if got[0].Unreadable != "" || got[1].Unreadable == "" || got[1].Status != None || got[2].Unreadable != wrongType {
		t.Fatalf("states %+v", got)
	}
	r.Stop()
	if _, err := s.LoadMany(ctx, []string{"p"}); err == nil {
		t.Fatal("redis down: no error")
	}
}

func testStore(t *testing.T) (*Store, *redistest.Server) {
	r := redistest.Start(t)
	return NewStore(r.Client(), Keys{Prefix: "kestrel:", EventListFormat: "event:p%d", EventListLen: 10, StreamKey: "kestrel:events", StreamMaxLen: 10}), r
}

// Every branch of cas.lua: write from no state, conflict, write from a
// state, overwrite an unreadable hash and a key of another type only when
// the raw stored values are the ones decided from.
func TestCASBranches(t *testing.T) {
	s, r := testStore(t)
	rdb := r.Client()
	ctx := context.Background()
	tr := func(from, to State) *Transition {
		return &Transition{ID: "x", From: from, To: to, Priority: 2, Endpoint: "h", Event: []byte(`{"e":1}`)}
	}
	p1 := State{Status: Problem, CurrentStep: 1, EventTime: 60}
	ok1 := State{Status: OK, CurrentStep: 1, EventTime: 120}
	if ok, _, err := s.Write(ctx, tr(State{}, p1)); !ok || err != nil {
		t.Fatalf("from none: %v %v", ok, err)
	}
	if n, _ := rdb.ZScore(ctx, "kestrel:alarms:active", "x").Result(); n != 60 {
		t.Fatalf("active score %v", n)
	}
	ok, stored, err := s.Write(ctx, tr(State{}, p1))
	if ok || err != nil || stored != p1 {
		t.Fatalf("conflict: %v %+v %v", ok, stored, err)
	}
	if ok, _, err := s.Write(ctx, tr(p1, ok1)); !ok || err != nil {
		t.Fatalf("from PROBLEM: %v %v", ok, err)
	}
	if n, _ := rdb.ZCard(ctx, "kestrel:alarms:active").Result(); n != 0 {
		t.Fatal("OK left the id in the active set")
	}
	// A hand-edited status: unreadable, overwritten from its raw form only.
	rdb.HSet(ctx, "kestrel:alarm:x", "status", "MAYBE")
	bad, _ := s.Load(ctx, "x")
	if bad.Unreadable == "" {
		t.Fatalf("hand-edited status read as %+v", bad)
	}
	if ok, stored, _ := s.Write(ctx, tr(State{}, p1)); ok || stored != bad {
		t.Fatalf("wrote over an unreadable state without comparing it: %v %+v", ok, stored)
	}
	if ok, _, err := s.Write(ctx, tr(bad, p1)); !ok || err != nil {
		t.Fatalf("overwrite unreadable: %v %v", ok, err)
	}
	if st, _ := s.Load(ctx, "x"); st != p1 {
		t.Fatalf("after overwrite: %+v", st)
	}
	// A key of another type.
	rdb.Del(ctx, "kestrel:alarm:x")
	rdb.RPush(ctx, "kestrel:alarm:x", "a", "b")
	wt, err := s.Load(ctx, "x")
	if err != nil || wt.Unreadable != wrongType {
		t.Fatalf("list under the key: %+v %v", wt, err)
	}
	if ok, stored, err := s.Write(ctx, tr(State{}, p1)); ok || err != nil || stored.Unreadable != wrongType {
		t.Fatalf("wrong type, decided from none: %v %+v %v", ok, stored, err)
	}
	if ok, _, err := s.Write(ctx, tr(wt, p1)); !ok || err != nil {
		t.Fatalf("overwrite wrong type: %v %v", ok, err)
	}
	if st, _ := s.Load(ctx, "x"); st != p1 {
		t.Fatalf("after overwriting the wrong type: %+v", st)
	}
	if n, _ := rdb.LLen(ctx, "event:p2").Result(); n != 4 {
		t.Fatalf("%d events, want 4 (one per successful write)", n)
	}
	// An event list of another type fails the write before anything is
	// written: no state without its event.
	rdb.Del(ctx, "event:p2")
	rdb.Set(ctx, "event:p2", "a string", 0)
	if ok, _, err := s.Write(ctx, tr(p1, ok1)); ok || err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("wrong-typed event list: %v %v", ok, err)
	}
	if st, _ := s.Load(ctx, "x"); st != p1 {
		t.Fatalf("state written although the event could not be: %+v", st)
	}
	if n, _ := rdb.ZCard(ctx, "kestrel:alarms:active").Result(); n != 1 {
		t.Fatal("active set changed by a failed write")
	}
}

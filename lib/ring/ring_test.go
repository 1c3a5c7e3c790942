package ring

import (
	"fmt"
	"testing"

	"github.com/kestrel-mon/kestrel/proto"
)

var cfg = Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}

func keys(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(proto.SeriesKey(fmt.Sprintf("host%03d", i%97), fmt.Sprintf("metric.%d", i), []proto.Tag{{Key: "k", Value: fmt.Sprint(i % 7)}}))
	}
	return out
}

func TestSameMembersSameOwner(t *testing.T) {
	// Two independent rings, members given in different orders (as two
	// transfers would learn them from heartbeats).
	a, err := New([]string{"judge-a", "judge-b", "judge-c"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New([]string{"judge-c", "judge-a", "judge-b", "judge-a"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for _, k := range keys(5000) {
		oa, _ := a.Locate(k)
		ob, _ := b.Locate(k)
		oc, _ := a.LocateKey(k)
		if oa != ob || oa != oc {
			t.Fatalf("key %s: owners %q %q %q differ", k, oa, ob, oc)
		}
		used[oa]++
	}
	if len(used) != 3 {
		t.Fatalf("keys spread over %d members, want 3: %v", len(used), used)
	}
}

func TestRemoveMovesOnlyItsKeys(t *testing.T) {
	full, err := New([]string{"j1", "j2", "j3", "j4"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	less, err := New([]string{"j1", "j2", "j4"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, k := range keys(5000) {
		before, _ := full.Locate(k)
		after, _ := less.Locate(k)
		if before == "j3" {
			if after == "j3" {
				t.Fatalf("key %s still on removed member", k)
			}
			moved++
			continue
		}
		if before != after {
			t.Fatalf("key %s of surviving member moved %s -> %s", k, before, after)
		}
	}
	if moved == 0 {
		t.Fatal("removed member owned no keys")
	}
	// The same at the partition level: only the removed member's
	// partitions changed owner.
	changed := 0
	for p := range cfg.PartitionCount {
		if full.members[full.owner[p]] != "j3" && full.members[full.owner[p]] != less.members[less.owner[p]] {
			changed++
		}
	}
	if changed != 0 {
		t.Fatalf("%d partitions of surviving members changed owner", changed)
	}
}

func TestEmptyRing(t *testing.T) {
	r, err := New(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Locate([]byte("x")); ok || r.Len() != 0 {
		t.Fatal("empty ring located a key")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{PartitionCount: 0, ReplicationFactor: 20, Load: 1.25},
		{PartitionCount: 271, ReplicationFactor: 0, Load: 1.25},
		{PartitionCount: 271, ReplicationFactor: 20, Load: 1.0},
		{PartitionCount: 271, ReplicationFactor: 20, Load: 0},
	} {
		if _, err := New([]string{"a"}, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestLocateDoesNotAllocate(t *testing.T) {
	r, _ := New([]string{"a", "b", "c"}, cfg)
	k := []byte("host01/cpu.idle")
	if n := testing.AllocsPerRun(100, func() { r.Locate(k) }); n != 0 {
		t.Fatalf("Locate allocates %v", n)
	}
}

package ring

import (
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"
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
		{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25, Hasher: "md5"},
		{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25, Hasher: "XXHASH64"},
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

func TestHasherDefault(t *testing.T) {
	r, err := New([]string{"a"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config().Hasher; got != HasherXXHash64 {
		t.Fatalf("hasher %q after defaults, want %q", got, HasherXXHash64)
	}
	explicit := cfg
	explicit.Hasher = HasherXXHash64
	r2, err := New([]string{"a"}, explicit)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID() != r2.ID() {
		t.Fatal("empty hasher and xxhash64 give different ring ids")
	}
}

// The partition of a key is xxhash64(key) % PartitionCount, however it is
// computed: Partition, PartitionOfHash of the key's xxhash (what the judge
// does) and consistent's own FindPartitionID.
func TestPartitionOfHash(t *testing.T) {
	for _, pc := range []int{1, 7, 271, 1024} {
		c := cfg
		c.PartitionCount = pc
		r, err := New([]string{"j1", "j2", "j3"}, c)
		if err != nil {
			t.Fatal(err)
		}
		empty, err := New(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		if r.PartitionCount() != pc || empty.PartitionCount() != pc {
			t.Fatalf("partition count %d/%d, want %d", r.PartitionCount(), empty.PartitionCount(), pc)
		}
		for _, k := range keys(3000) {
			p := r.Partition(k)
			if h := PartitionOfHash(xxhash.Sum64(k), pc); h != p {
				t.Fatalf("pc %d key %s: PartitionOfHash %d, Partition %d", pc, k, h, p)
			}
			if f := r.c.FindPartitionID(k); f != p {
				t.Fatalf("pc %d key %s: FindPartitionID %d, Partition %d", pc, k, f, p)
			}
			if e := empty.Partition(k); e != p {
				t.Fatalf("pc %d key %s: empty ring partition %d, want %d", pc, k, e, p)
			}
			owner, _ := r.Locate(k)
			if o, ok := r.OwnerOf(p); !ok || o != owner {
				t.Fatalf("pc %d key %s: OwnerOf(%d) = %q %v, Locate = %q", pc, k, p, o, ok, owner)
			}
		}
	}
}

// Two rings built independently (members learnt in different orders) from
// the same members and config agree on the owner of every partition and
// have the same ID.
func TestOwnerOfSameOnIndependentRings(t *testing.T) {
	a, err := New([]string{"judge-a", "judge-b", "judge-c", "judge-d"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New([]string{"judge-d", "judge-b", "judge-a", "judge-c", "judge-b"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() {
		t.Fatalf("ids %x %x differ for the same members and config", a.ID(), b.ID())
	}
	owners := map[string]int{}
	for p := range a.PartitionCount() {
		oa, okA := a.OwnerOf(p)
		ob, okB := b.OwnerOf(p)
		if !okA || !okB || oa != ob {
			t.Fatalf("partition %d: owners %q %v, %q %v", p, oa, okA, ob, okB)
		}
		if m := a.c.GetPartitionOwner(p); m.String() != oa {
			t.Fatalf("partition %d: OwnerOf %q, consistent %q", p, oa, m)
		}
		owners[oa]++
	}
	if len(owners) != 4 {
		t.Fatalf("partitions spread over %d members: %v", len(owners), owners)
	}
	for _, p := range []int{-1, a.PartitionCount()} {
		if o, ok := a.OwnerOf(p); ok {
			t.Fatalf("OwnerOf(%d) = %q, want none", p, o)
		}
	}
	empty, _ := New(nil, cfg)
	if o, ok := empty.OwnerOf(0); ok {
		t.Fatalf("empty ring: OwnerOf(0) = %q", o)
	}
}

func TestIDDiffers(t *testing.T) {
	id := func(members []string, c Config) uint64 {
		t.Helper()
		r, err := New(members, c)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID()
	}
	base := id([]string{"a", "b", "c"}, cfg)
	if id([]string{"c", "b", "a"}, cfg) != base {
		t.Fatal("member order changed the id")
	}
	other := cfg
	other.PartitionCount = 272
	load := cfg
	load.Load = 1.5
	for name, got := range map[string]uint64{
		"member removed":  id([]string{"a", "b"}, cfg),
		"member added":    id([]string{"a", "b", "c", "d"}, cfg),
		"member renamed":  id([]string{"a", "b", "x"}, cfg),
		"members joined":  id([]string{"ab", "c"}, cfg),
		"no members":      id(nil, cfg),
		"partition count": id([]string{"a", "b", "c"}, other),
		"load":            id([]string{"a", "b", "c"}, load),
	} {
		if got == base {
			t.Errorf("%s: same id %x", name, got)
		}
	}
}

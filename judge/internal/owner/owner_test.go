package owner

import (
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ring"
)

func mustRing(t *testing.T, members ...string) *ring.Ring {
	t.Helper()
	r, err := ring.New(members, ring.Config{PartitionCount: 71, ReplicationFactor: 20, Load: 1.25})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ownedBy lists the partitions r gives node.
func ownedBy(r *ring.Ring, node string) map[int]bool {
	m := map[int]bool{}
	for p := 0; p < r.PartitionCount(); p++ {
		if o, _ := r.OwnerOf(p); o == node {
			m[p] = true
		}
	}
	return m
}

func TestGainSettleLoseRegain(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := New("a", 2*time.Second)
	if tab := tr.Table(); tab.Owned() != 0 {
		t.Fatalf("a new tracker owns %d partitions", tab.Owned())
	}
	alone := mustRing(t, "a")
	if ch := tr.Apply(alone, t0); ch.Gained != 71 {
		t.Fatalf("alone: gained %d, want 71", ch.Gained)
	}
	tab := tr.Table()
	if tab.Serves(0, t0.Add(time.Second).UnixNano()) {
		t.Fatal("served before the settle period ended")
	}
	if !tab.Serves(0, t0.Add(2*time.Second).UnixNano()) {
		t.Fatal("not served after the settle period")
	}
	gen0 := tab.Gen(0)

	// b joins: a keeps some partitions (same generation, still settled)
	// and loses the others.
	three := mustRing(t, "a", "b")
	mine := ownedBy(three, "a")
	t1 := t0.Add(10 * time.Second)
	ch := tr.Apply(three, t1)
	if ch.Lost != 71-len(mine) || ch.Gained != 0 {
		t.Fatalf("b joined: %+v, want lost %d gained 0", ch, 71-len(mine))
	}
	tab = tr.Table()
	for p := 0; p < 71; p++ {
		if mine[p] != tab.Serves(p, t1.UnixNano()) {
			t.Fatalf("partition %d: serves=%v, owned in ring=%v", p, !mine[p], mine[p])
		}
	}
	var kept, lost int = -1, -1
	for p := 0; p < 71; p++ {
		if mine[p] && kept < 0 {
			kept = p
		}
		if !mine[p] && lost < 0 {
			lost = p
		}
	}
	genKept, genLost := tab.Gen(kept), tab.Gen(lost)

	// b leaves: a regains what b had, with a new generation and a new
	// settle period; what it kept is unchanged.
	t2 := t1.Add(10 * time.Second)
	tr.Apply(alone, t2)
	tab = tr.Table()
	if tab.Gen(kept) != genKept || !tab.Serves(kept, t2.UnixNano()) {
		t.Fatal("a partition owned throughout changed generation or stopped being served")
	}
	if tab.Gen(lost) == genLost || tab.Gen(lost) == gen0 {
		t.Fatalf("a regained partition kept an old generation %d", tab.Gen(lost))
	}
	if tab.Serves(lost, t2.UnixNano()) || !tab.Serves(lost, t2.Add(2*time.Second).UnixNano()) {
		t.Fatal("a regained partition must settle again")
	}
}

func TestSuspendResume(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := New("a", time.Second)
	tr.Apply(mustRing(t, "a", "b"), t0)
	before := tr.Table()
	if before.Owned() == 0 {
		t.Fatal("a owns nothing")
	}
	if ch := tr.Suspend(Disconnected, t0.Add(5*time.Second)); ch.Lost != before.Owned() {
		t.Fatalf("suspend: lost %d, want %d", ch.Lost, before.Owned())
	}
	if tr.Table().Owned() != 0 {
		t.Fatal("a suspended judge owns partitions")
	}
	// A ring change while suspended is remembered, not served.
	tr.Apply(mustRing(t, "a"), t0.Add(6*time.Second))
	if tr.Table().Owned() != 0 {
		t.Fatal("a suspended judge gained partitions")
	}
	t1 := t0.Add(10 * time.Second)
	if ch := tr.Resume(Disconnected, t1); ch.Gained != 71 {
		t.Fatalf("resume: gained %d, want 71", ch.Gained)
	}
	after := tr.Table()
	for p := 0; p < 71; p++ {
		if before.Owns(p) && after.Gen(p) == before.Gen(p) {
			t.Fatalf("partition %d kept its generation across a suspension", p)
		}
		if after.Serves(p, t1.UnixNano()) {
			t.Fatalf("partition %d served before settling after a suspension", p)
		}
	}
}

func TestRingWithOtherPartitionCount(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := New("a", 0)
	tr.Apply(mustRing(t, "a"), t0)
	g := tr.Table().Gen(3)
	r, err := ring.New([]string{"a"}, ring.Config{PartitionCount: 13, ReplicationFactor: 20, Load: 1.25})
	if err != nil {
		t.Fatal(err)
	}
	ch := tr.Apply(r, t0.Add(time.Second))
	tab := tr.Table()
	if tab.Partitions() != 13 || ch.Gained != 13 || ch.Lost != 71 {
		t.Fatalf("partitions %d, change %+v", tab.Partitions(), ch)
	}
	if tab.Gen(3) == g {
		t.Fatal("a new partitioning reused a generation")
	}
	if tab.Partition(13+5) != 5 {
		t.Fatalf("Partition(18) = %d with 13 partitions", tab.Partition(18))
	}
}

// Each reason is lifted on its own: a reconnect does not make a judge whose
// ring parameters differ serve.
func TestSuspendReasonsIndependent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := New("a", 0)
	tr.Apply(mustRing(t, "a"), t0)
	tr.Suspend(ParamsDiffer, t0)
	tr.Suspend(Disconnected, t0)
	tr.Resume(Disconnected, t0.Add(time.Second))
	if n := tr.Table().Owned(); n != 0 {
		t.Fatalf("a reconnect lifted the parameter suspension: %d owned", n)
	}
	if ch := tr.Resume(ParamsDiffer, t0.Add(2*time.Second)); ch.Gained != 71 {
		t.Fatalf("resume: %+v", ch)
	}
	if ch := tr.Resume(ParamsDiffer, t0.Add(3*time.Second)); ch != (Change{}) {
		t.Fatalf("a second resume changed something: %+v", ch)
	}
}

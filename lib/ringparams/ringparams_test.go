package ringparams

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

const bucketName = "KESTREL_RING"

var base = Params{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25, MemberTimeout: 3 * time.Second, RejoinHold: 2 * time.Second}

func newJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.StartServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestJSON(t *testing.T) {
	p := base
	p.Hasher = "xxhash64"
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"partition_count":271,"replication_factor":20,"load":1.25,"hasher":"xxhash64","member_timeout":"3s","rejoin_hold":"2s"}`
	if string(b) != want {
		t.Fatalf("json\n got %s\nwant %s", b, want)
	}
	var got Params
	if err := json.Unmarshal(b, &got); err != nil || got != p {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{
		`{"partition_count":271,"replication_factor":20,"load":1.25,"hasher":"xxhash64","member_timeout":"3s","rejoin_hold":"2s","extra":1}`,
		`{"partition_count":271,"replication_factor":20,"load":1.25,"hasher":"xxhash64","member_timeout":"3","rejoin_hold":"2s"}`,
		`{"partition_count":271,"replication_factor":20,"load":1.25,"hasher":"xxhash64","member_timeout":"3s"}`,
		`{"partition_count":"271"}`,
		`[]`,
	} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	f := func(mod func(*Params), want string) {
		t.Helper()
		p := base
		mod(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want it to mention %q", p, err, want)
		}
	}
	f(func(p *Params) { p.PartitionCount = 0 }, "partition_count")
	f(func(p *Params) { p.ReplicationFactor = -1 }, "replication_factor")
	f(func(p *Params) { p.Load = 1 }, "load")
	f(func(p *Params) { p.Load = 1e7 }, "load")
	f(func(p *Params) { p.Hasher = "fnv" }, "hasher")
	f(func(p *Params) { p.MemberTimeout = 0 }, "member_timeout")
	f(func(p *Params) { p.RejoinHold = -time.Second }, "rejoin_hold")
}

func TestMismatchAndEqual(t *testing.T) {
	withHasher := base
	withHasher.Hasher = "xxhash64"
	if err := Mismatch(base, withHasher); err != nil || !base.Equal(withHasher) {
		t.Fatalf("empty hasher vs xxhash64: %v", err)
	}
	other := Params{PartitionCount: 512, ReplicationFactor: 10, Load: 1.5, Hasher: "xxhash64", MemberTimeout: 5 * time.Second, RejoinHold: time.Second}
	err := Mismatch(other, base)
	var me *MismatchError
	if !errors.As(err, &me) || len(me.Diffs) != 5 || base.Equal(other) {
		t.Fatalf("mismatch %v", err)
	}
	want := "partition_count 271 (config) != 512 (bucket), replication_factor 20 (config) != 10 (bucket), load 1.25 (config) != 1.5 (bucket), " +
		"member_timeout 3s (config) != 5s (bucket), rejoin_hold 2s (config) != 1s (bucket)"
	if err.Error() != want {
		t.Fatalf("message\n got %s\nwant %s", err, want)
	}
	one := base
	one.PartitionCount = 512
	if err := Mismatch(one, base); err == nil || err.Error() != "partition_count 271 (config) != 512 (bucket)" {
		t.Fatalf("one field: %v", err)
	}
}

func TestEnsureFirstWritesLaterRead(t *testing.T) {
	js := newJS(t)
	ctx := ctxT(t)
	stored, err := Ensure(ctx, js, bucketName, 1, base)
	if err != nil {
		t.Fatal(err)
	}
	want := base
	want.Hasher = "xxhash64"
	if stored != want {
		t.Fatalf("first start: stored %+v, want %+v (hasher filled in)", stored, want)
	}
	kv, err := js.KeyValue(ctx, bucketName)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != History || st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 1 {
		t.Fatalf("bucket history %d replicas %d", st.History(), st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas)
	}
	e, err := kv.Get(ctx, Key)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Value()); got != `{"partition_count":271,"replication_factor":20,"load":1.25,"hasher":"xxhash64","member_timeout":"3s","rejoin_hold":"2s"}` {
		t.Fatalf("stored value %s", got)
	}

	// Second start with the same parameters: nothing written, no mismatch.
	again, err := Ensure(ctx, js, bucketName, 1, base)
	if err != nil || Mismatch(again, base) != nil {
		t.Fatalf("second start: %+v %v %v", again, err, Mismatch(again, base))
	}
	// Another start with other parameters: the stored ones come back and
	// the mismatch names the field.
	diff := base
	diff.PartitionCount = 512
	got, err := Ensure(ctx, js, bucketName, 1, diff)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("stored value changed by a later start: %+v", got)
	}
	if err := Mismatch(got, diff); err == nil || err.Error() != "partition_count 512 (config) != 271 (bucket)" {
		t.Fatalf("mismatch %v", err)
	}
	if e, _ := kv.Get(ctx, Key); e.Revision() != 1 {
		t.Fatalf("revision %d, want 1: a later start wrote", e.Revision())
	}
	// Invalid parameters are refused before anything is written.
	bad := base
	bad.Load = 0.5
	if _, err := Ensure(ctx, js, "OTHER_RING", 1, bad); err == nil || !strings.Contains(err.Error(), "load") {
		t.Fatalf("invalid want: %v", err)
	}
	if _, err := js.KeyValue(ctx, "OTHER_RING"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("bucket created for invalid parameters: %v", err)
	}
}

// Processes starting together with different parameters: exactly one
// value is stored, every one of them gets it back, and all but its writer
// see a mismatch.
func TestEnsureConcurrent(t *testing.T) {
	js := newJS(t)
	ctx := ctxT(t)
	const n = 8
	var (
		wg     sync.WaitGroup
		stored [n]Params
		errs   [n]error
		wants  [n]Params
	)
	start := make(chan struct{})
	for i := range n {
		wants[i] = base
		wants[i].PartitionCount = 100 + i
		wg.Go(func() {
			<-start
			stored[i], errs[i] = Ensure(ctx, js, bucketName, 1, wants[i])
		})
	}
	close(start)
	wg.Wait()
	matches := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("ensure %d: %v", i, errs[i])
		}
		if stored[i] != stored[0] {
			t.Fatalf("ensure %d got %+v, ensure 0 got %+v", i, stored[i], stored[0])
		}
		if err := Mismatch(stored[i], wants[i]); err == nil {
			matches++
		} else if !strings.HasPrefix(err.Error(), "partition_count ") {
			t.Fatalf("loser %d: mismatch %v", i, err)
		}
	}
	if matches != 1 {
		t.Fatalf("%d starters match the stored value, want exactly 1", matches)
	}
	kv, err := js.KeyValue(ctx, bucketName)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := kv.History(ctx, Key)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history %d entries (%v), want exactly one write", len(hist), err)
	}
}

func TestGetAndSet(t *testing.T) {
	js := newJS(t)
	ctx := ctxT(t)
	if _, err := Get(ctx, js, bucketName); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing bucket: %v", err)
	}
	next := base
	next.PartitionCount = 512
	next.RejoinHold = 5 * time.Second
	if err := Set(ctx, js, bucketName, 1, next); err != nil { // creates the bucket
		t.Fatal(err)
	}
	got, err := Get(ctx, js, bucketName)
	if err != nil || !got.Equal(next) || got.Hasher != "xxhash64" {
		t.Fatalf("get after set: %+v %v", got, err)
	}
	bad := next
	bad.ReplicationFactor = 0
	if err := Set(ctx, js, bucketName, 1, bad); err == nil || !strings.Contains(err.Error(), "replication_factor") {
		t.Fatalf("invalid set: %v", err)
	}
	if got, _ := Get(ctx, js, bucketName); !got.Equal(next) {
		t.Fatalf("invalid set changed the value: %+v", got)
	}
	kv, _ := js.KeyValue(ctx, bucketName)
	if err := kv.Delete(ctx, Key); err != nil {
		t.Fatal(err)
	}
	if _, err := Get(ctx, js, bucketName); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	// After a delete the next start stores its parameters again.
	if p, err := Ensure(ctx, js, bucketName, 1, base); err != nil || Mismatch(p, base) != nil {
		t.Fatalf("ensure after delete: %+v %v", p, err)
	}
}

func TestSetThenWatch(t *testing.T) {
	js := newJS(t)
	ctx := ctxT(t)
	if _, err := Ensure(ctx, js, bucketName, 1, base); err != nil {
		t.Fatal(err)
	}
	seen := make(chan Params, 16)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Watch(wctx, js, bucketName, func(p Params) { seen <- p }) }()
	next := func(what string) Params {
		t.Helper()
		select {
		case p := <-seen:
			return p
		case <-time.After(10 * time.Second):
			t.Fatalf("watch did not report %s", what)
			return Params{}
		}
	}
	if p := next("the current value"); !p.Equal(base) {
		t.Fatalf("current value %+v", p)
	}
	changed := base
	changed.Load = 1.5
	if err := Set(ctx, js, bucketName, 1, changed); err != nil {
		t.Fatal(err)
	}
	p := next("the change")
	if !p.Equal(changed) {
		t.Fatalf("watched %+v, want %+v", p, changed)
	}
	if err := Mismatch(p, base); err == nil || err.Error() != "load 1.25 (config) != 1.5 (bucket)" {
		t.Fatalf("mismatch %v", err)
	}
	kv, _ := js.KeyValue(ctx, bucketName)
	if err := kv.Delete(ctx, Key); err != nil {
		t.Fatal(err)
	}
	if p := next("the delete"); !p.IsZero() {
		t.Fatalf("delete reported as %+v", p)
	}
	if err := Set(ctx, js, bucketName, 1, base); err != nil {
		t.Fatal(err)
	}
	if p := next("the value set back"); !p.Equal(base) {
		t.Fatalf("watched %+v", p)
	}
	if err := kv.Purge(ctx, Key); err != nil {
		t.Fatal(err)
	}
	if p := next("the purge"); !p.IsZero() {
		t.Fatalf("purge reported as %+v", p)
	}
	if _, err := kv.Put(ctx, Key, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if p := next("an unreadable value"); !p.IsZero() {
		t.Fatalf("unreadable value reported as %+v", p)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch returned %v at cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not return after cancel")
	}
	if err := Watch(ctx, js, "NO_SUCH_RING", func(Params) {}); err == nil {
		t.Fatal("watch of a missing bucket returned nil")
	}
}

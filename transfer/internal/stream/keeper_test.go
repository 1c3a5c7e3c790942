package stream

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/proctest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type runningKeeper struct {
	*Keeper
	met  *Metrics
	logs *proctest.Buffer
}

// startKeepers starts n Keepers (n transfers) on their own connections,
// stopped on cleanup; interval 0 keeps the default.
func startKeepers(t *testing.T, srv *server.Server, subj proto.Subjects, cfg config.Config, n int, advisories bool, interval time.Duration) []runningKeeper {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, n)
	ks := make([]runningKeeper, n)
	for i := range ks {
		js, err := jetstream.New(natstest.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		logs := &proctest.Buffer{}
		met := NewMetrics(prometheus.NewRegistry())
		k := NewKeeper(js, subj, cfg.Stream, cfg.Consumer, met, slog.New(slog.NewTextHandler(logs, nil)))
		k.advisories = advisories
		if interval > 0 {
			k.Interval = interval
		}
		ks[i] = runningKeeper{k, met, logs}
		go func() { _ = k.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		for range n {
			<-done
		}
		if t.Failed() {
			for i, k := range ks {
				t.Logf("keeper %d log:\n%s", i, k.logs.String())
			}
		}
	})
	return ks
}

func waitReady(t *testing.T, ks []runningKeeper) {
	t.Helper()
	for i, k := range ks {
		select {
		case <-k.Ready():
		case <-time.After(20 * time.Second):
			t.Fatalf("keeper %d not ready: %s", i, k.NotReady())
		}
		if why := k.NotReady(); why != "" {
			t.Fatalf("keeper %d ready but says %q", i, why)
		}
	}
}

// TestKeeperRecreatesDeletedConsumer: a transfer keeps the stream while
// agents publish. The consumer is deleted from outside: within 5 s the
// transfer notices (on the deletion advisory, or by polling alone),
// closes the ingest subjects (publishers get errors and keep their
// batches), recreates the consumer and opens them again, counting and
// logging it. Every publish acked after the subjects were closed reaches
// the new consumer; only what was published between the deletion and the
// closing is lost. (Several transfers repairing at once:
// TestKeeperRecoveryManyTransfers.)
func TestKeeperRecreatesDeletedConsumer(t *testing.T) {
	t.Run("advisory", func(t *testing.T) { testRecreatesDeletedConsumer(t, 1, true) })
	t.Run("polling", func(t *testing.T) { testRecreatesDeletedConsumer(t, 1, false) })
}

func testRecreatesDeletedConsumer(t *testing.T, transfers int, advisories bool) {
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	cfg := config.Default()
	ks := startKeepers(t, srv, subj, cfg, transfers, advisories, 0)
	waitReady(t, ks)
	recreated := func() float64 {
		n := 0.0
		for _, k := range ks {
			n += testutil.ToFloat64(k.met.ConsumerRecreated)
		}
		return n
	}
	if n := recreated(); n != 0 {
		t.Fatalf("%v recreations on a fresh start", n)
	}
	pub := startPublishers(t, srv, subj, 3)
	pub.waitAcked(t, 200)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := admin.DeleteConsumer(ctx, subj.Stream(), proto.ConsumerTransfer); err != nil {
		t.Fatal(err)
	}
	for recreated() == 0 {
		if time.Since(deleted) > 5*time.Second {
			t.Fatal("deleted consumer not recreated within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(deleted)
	cons, err := admin.Consumer(ctx, subj.Stream(), proto.ConsumerTransfer)
	if err != nil {
		t.Fatalf("consumer after recreation: %v", err)
	}
	pub.waitAcked(t, 300)
	pub.halt()
	s, err := admin.Stream(ctx, subj.Stream())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, []string{"kestrel.ingest.>"}) {
		t.Fatalf("subjects after recreation %v", got)
	}

	// The subjects were closed when the first publish after the deletion
	// failed for want of a stream (not, say, a timeout under load); from
	// then on every acked publish must be delivered.
	pub.mu.Lock()
	var closedAt time.Time
	for _, r := range pub.order {
		if r.noResponders && r.start.After(deleted) {
			closedAt = r.end
			break
		}
	}
	want := map[string]bool{}
	lostBefore := 0
	for _, r := range pub.order {
		switch {
		case !r.ok:
		case !closedAt.IsZero() && r.start.After(closedAt):
			want[r.id] = true
		case r.start.After(deleted):
			lostBefore++ // acked between deletion and detection: may be lost
		}
	}
	pub.mu.Unlock()
	if closedAt.IsZero() {
		t.Fatal("no publish failed after the deletion: the ingest subjects were never closed")
	}
	got := drain(t, cons, want)
	var lost []string
	for id := range want {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d publishes acked after the subjects were closed never reached the consumer, e.g. %v", len(lost), len(want), lost[:min(len(lost), 5)])
	}
	var logged int
	for _, k := range ks {
		logged += strings.Count(k.logs.String(), `level=ERROR msg="consumer was deleted: closed the ingest subjects and recreated it`)
		if why := k.NotReady(); why != "" {
			t.Errorf("keeper not ready after the recreation: %q", why)
		}
	}
	if logged < 1 || float64(logged) != recreated() {
		t.Fatalf("%d error lines for %v recreations", logged, recreated())
	}
	t.Logf("recreated %v after the deletion (%v counted); %d acked publishes in the undetected window, %d acked after the closing, all delivered",
		took.Round(time.Millisecond), recreated(), lostBefore, len(want))
}

// A transfer that died after closing the ingest subjects leaves them
// closed: a running transfer opens them again within a check or two,
// without counting a recreation (nothing was lost). A stream left open
// without a consumer (deleted while no transfer ran) is closed before the
// consumer is created, and that is counted.
func TestKeeperRepairsWhatOthersLeft(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	cfg := config.Default()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	// An old transfer's stream: ingest subjects open, no consumer.
	if _, err := admin.CreateStream(ctx, StreamConfig(subj, cfg.Stream)); err != nil {
		t.Fatal(err)
	}
	ks := startKeepers(t, srv, subj, cfg, 1, true, 0)
	k := ks[0]
	if why := k.NotReady(); why == "" {
		t.Fatal("ready before any check")
	}
	waitReady(t, ks)
	if n := testutil.ToFloat64(k.met.ConsumerRecreated); n != 1 {
		t.Fatalf("recreated %v, want 1 (the consumer was missing on an open stream)", n)
	}
	if v := testutil.ToFloat64(k.met.Ready); v != 1 {
		t.Fatalf("ready gauge %v", v)
	}

	// Closed by a transfer that died before recreating the consumer.
	s, err := admin.Stream(ctx, subj.Stream())
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	sc.Subjects = []string{ClosedSubject(subj)}
	if _, err := admin.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	for {
		s, err := admin.Stream(ctx, subj.Stream())
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(s.CachedInfo().Config.Subjects, []string{"kestrel.ingest.>"}) {
			break
		}
		if time.Since(closed) > 5*time.Second {
			t.Fatalf("ingest subjects still closed 5s later: %v", s.CachedInfo().Config.Subjects)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Logged after the update the admin saw: wait for it (opened twice:
	// at the start and now).
	for strings.Count(k.logs.String(), `msg="ingest subjects open"`) != 2 {
		if time.Since(closed) > 10*time.Second {
			t.Fatalf("reopening not logged:\n%s", k.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(k.met.ConsumerRecreated); n != 1 {
		t.Fatalf("recreated %v after reopening, want still 1", n)
	}
}

// A transfer configured with other settings than the existing stream's
// and consumer's (replicas 3 against an R1 stream, another ack_wait) runs
// with the existing ones: it is ready, logs one warning per object naming
// each field, sets the mismatch gauges; after `stream apply` of its
// settings (replicas left as they are) the gauges of what now matches
// fall to 0.
func TestKeeperExistingSettingsWin(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	first := config.Default()
	if _, err := Ensure(ctx, admin, subj, first.Stream, first.Consumer); err != nil {
		t.Fatal(err)
	}
	other := config.Default()
	other.Stream.Replicas = 3
	other.Consumer.AckWait = 45 * time.Second
	const interval = 50 * time.Millisecond
	ks := startKeepers(t, srv, subj, other, 1, true, interval)
	k := ks[0]
	waitReady(t, ks)
	mismatch := func(object string) float64 { return testutil.ToFloat64(k.met.ConfigMismatch.WithLabelValues(object)) }
	if mismatch(ObjectStream) != 1 || mismatch(ObjectConsumer) != 1 {
		t.Fatalf("mismatch gauges stream %v consumer %v", mismatch(ObjectStream), mismatch(ObjectConsumer))
	}
	s, _ := admin.Stream(ctx, subj.Stream())
	c, _ := admin.Consumer(ctx, subj.Stream(), proto.ConsumerTransfer)
	if s.CachedInfo().Config.Replicas != 1 || c.CachedInfo().Config.AckWait != first.Consumer.AckWait {
		t.Fatalf("existing settings changed: replicas %d ack_wait %v", s.CachedInfo().Config.Replicas, c.CachedInfo().Config.AckWait)
	}
	logs := k.logs.String()
	for _, want := range []string{
		`level=WARN msg="config differs from the existing stream: using the existing settings (kestrel-transfer stream apply changes them)" stream=KESTREL_INGEST differences="replicas 3 (config) != 1 (stream)"`,
		fmt.Sprintf(`level=WARN msg="config differs from the existing consumer: using the existing settings (kestrel-transfer stream apply changes them)" stream=KESTREL_INGEST differences="ack_wait 45s (config) != %v (consumer)"`, first.Consumer.AckWait),
	} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %s:\n%s", want, logs)
		}
	}
	// The operator applies the ack_wait (replicas cannot grow on one server).
	apply := other
	apply.Stream.Replicas = 1
	if _, _, err := Apply(ctx, admin, subj, apply.Stream, apply.Consumer); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for mismatch(ObjectConsumer) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("consumer mismatch gauge still 1 after apply")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(5 * interval) // more checks: nothing logged again for the unchanged stream difference
	if v := mismatch(ObjectStream); v != 1 {
		t.Fatalf("stream mismatch gauge %v, want 1 (replicas still differ)", v)
	}
	if n := strings.Count(k.logs.String(), "level=WARN msg=\"config differs"); n != 2 {
		t.Fatalf("%d warnings, want 2 (once per object and change):\n%s", n, k.logs.String())
	}
}

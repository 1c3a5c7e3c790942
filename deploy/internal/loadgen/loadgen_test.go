package loadgen

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/natsserver"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

func TestTrackerStats(t *testing.T) {
	tr := NewTracker(10)
	probe, _ := tr.Reserve(1)
	tr.MarkSent(probe, 1, 1)
	tr.MarkPublished(probe, 1)
	tr.Ack(probe, 2)
	first, ok := tr.Reserve(4) // 1..4
	if !ok || first != 1 {
		t.Fatalf("Reserve = %d %v", first, ok)
	}
	tr.MarkSent(first, 4, 100)
	tr.MarkPublished(first, 3) // seq 4: publish failed
	tr.Ack(1, 110)
	tr.Ack(2, 130)
	tr.Ack(2, 140) // duplicate
	tr.Ack(4, 150) // acked though its publish was not acknowledged
	tr.Ack(9, 150) // never issued
	st := tr.Stats(1)
	want := Stats{Issued: 4, Published: 3, Acked: 3, AckedUnpublished: 1, Unacked: 1, DupAcks: 1, Foreign: 1,
		FirstPub: 100, LastPub: 100, LastAck: 150, AckedInWindow: 0, P50: 30, P90: 50, P99: 50, Max: 50}
	if st != want {
		t.Fatalf("stats\n got %+v\nwant %+v", st, want)
	}
	if _, ok := tr.Reserve(6); ok {
		t.Fatal("Reserve past capacity succeeded")
	}
}

func TestPercentile(t *testing.T) {
	v := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]int64{0.5: 5, 0.9: 9, 0.99: 10, 1: 10, 0.01: 1} {
		if got := percentile(v, q); got != want {
			t.Errorf("percentile(%v) = %d, want %d", q, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty")
	}
}

func TestParseMetric(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total_other 9
process_cpu_seconds_total 12.34
process_max_fds 1024
`
	v, err := ParseMetric(strings.NewReader(text), "process_cpu_seconds_total")
	if err != nil || v != 12.34 {
		t.Fatalf("ParseMetric = %v %v", v, err)
	}
	if _, err := ParseMetric(strings.NewReader("process_max_fds 1\n"), "process_cpu_seconds_total"); err == nil {
		t.Fatal("missing metric: no error")
	}
	if _, err := ParseMetric(strings.NewReader("process_cpu_seconds_total x\n"), "process_cpu_seconds_total"); err == nil {
		t.Fatal("bad value: no error")
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Prefix: "kestrel", Agents: 1, Series: 1, Rate: 1, Duration: time.Second, Batch: 1, Drain: time.Second, DrainIdle: time.Second, Warmup: time.Second}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.Agents, bad.Rate, bad.Prefix = 0, 0, "a..b"
	err := bad.Validate()
	for _, want := range []string{"-agents", "-rate", "subject prefix"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %s", err, want)
		}
	}
}

// The observation method works with how a transfer really talks to a
// judge: nats.go Request (replies on _INBOX.<...>), "+OK" acknowledges,
// "-ERR" does not, and the members subject is ignored.
func TestObserverSeesRequestReplies(t *testing.T) {
	s, err := natsserver.Start(natsserver.Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	subj, _ := proto.NewSubjects("kestrel")
	connect := func() *nats.Conn {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	judgeNC, transferNC, obsNC := connect(), connect(), connect()

	// A judge that fails every request whose first value is odd.
	_, err = judgeNC.Subscribe(subj.Judge("j1"), func(m *nats.Msg) {
		pts, err := proto.DecodeBatch(m.Data)
		if err == nil && int(pts[0].Value)%2 == 1 {
			m.Respond(proto.JudgeReplyError(errors.New("redis down")))
			return
		}
		m.Respond(proto.JudgeReplyOK())
	})
	if err != nil {
		t.Fatal(err)
	}
	judgeNC.Flush()

	tr := NewTracker(100)
	obs, err := NewObserver(obsNC, nil, subj, tr, func(p *proto.Point) (uint64, bool) {
		return uint64(p.Value), p.Metric == Metric
	})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := tr.Reserve(12)
	tr.MarkSent(first, 12, tr.Now())
	tr.MarkPublished(first, 12)
	batch := func(vals ...int) []byte {
		var pts []proto.Point
		for _, v := range vals {
			pts = append(pts, proto.Point{Endpoint: "loadgen-0", Metric: Metric, Value: float64(v), Timestamp: 60, Step: 30})
		}
		pts = append(pts, proto.Point{Endpoint: "h", Metric: "other", Value: 7, Timestamp: 60, Step: 30})
		return proto.EncodeBatch(pts)
	}
	for _, b := range [][]byte{batch(0, 2, 4), batch(1, 3), batch(6, 8, 9)} {
		reply, err := transferNC.Request(subj.Judge("j1"), b, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = reply
	}
	// Old-style (non-mux) inbox request, as RequestMsg with a new inbox would use.
	inbox := transferNC.NewRespInbox()
	sub, _ := transferNC.SubscribeSync(inbox)
	transferNC.PublishRequest(subj.Judge("j1"), inbox, batch(10, 11))
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	transferNC.Publish(subj.Members(), []byte(`{"node":"j1","kind":"beat"}`))
	transferNC.Flush()

	deadline := time.Now().Add(10 * time.Second)
	for tr.Acked() < 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	os := obs.Stop()
	if os.Requests != 4 || os.OKReplies != 3 || os.ErrReplies != 1 || os.Unanswered != 0 || os.Dropped != 0 {
		t.Fatalf("observer stats %+v", os)
	}
	st := tr.Stats(0)
	if st.Acked != 8 || st.Unacked != 4 {
		t.Fatalf("acked %d unacked %d, want 8 and 4 (1 and 3 got -ERR, 5 and 7 were never sent)", st.Acked, st.Unacked)
	}
	for _, seq := range []uint64{1, 3, 5, 7} {
		if tr.ackNS[seq] != 0 {
			t.Errorf("seq %d acknowledged", seq)
		}
	}
}

// The server does not order a request (delivered by the goroutine reading
// the transfer's connection) and its reply (read from the judge's): the
// reply can reach the observer first. The observer must still match them,
// and a reply never followed by its request must not acknowledge anything.
func TestObserverMatchesReplyBeforeRequest(t *testing.T) {
	s, err := natsserver.Start(natsserver.Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	subj, _ := proto.NewSubjects("kestrel")
	var cc ConnCounters
	obsNC, err := nats.Connect(s.ClientURL(), cc.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer obsNC.Close()
	pubNC, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pubNC.Close()
	tr := NewTracker(10)
	obs, err := NewObserver(obsNC, &cc, subj, tr, func(p *proto.Point) (uint64, bool) { return uint64(p.Value), p.Metric == Metric })
	if err != nil {
		t.Fatal(err)
	}
	first, _ := tr.Reserve(5)
	tr.MarkSent(first, 5, tr.Now())
	tr.MarkPublished(first, 5)
	req := func(vals ...int) []byte {
		var pts []proto.Point
		for _, v := range vals {
			pts = append(pts, proto.Point{Endpoint: "loadgen-0", Metric: Metric, Value: float64(v), Timestamp: 60, Step: 30})
		}
		return proto.EncodeBatch(pts)
	}
	// Reply first, then its request (one connection: this order is kept).
	pubNC.Publish("_INBOX.a.1", proto.JudgeReplyOK())
	pubNC.PublishRequest(subj.Judge("j1"), "_INBOX.a.1", req(0, 1))
	// In order.
	pubNC.PublishRequest(subj.Judge("j1"), "_INBOX.a.2", req(2))
	pubNC.Publish("_INBOX.a.2", proto.JudgeReplyOK())
	// A reply whose request never comes, and JetStream-API-like traffic.
	pubNC.Publish("_INBOX.a.3", proto.JudgeReplyOK())
	pubNC.Publish("_INBOX.a.4", []byte(`{"type":"io.nats.jetstream.api.v1.consumer_info_response"}`))
	// Sentinel: once it is acknowledged, everything before it was handled.
	pubNC.PublishRequest(subj.Judge("j1"), "_INBOX.a.5", req(3))
	pubNC.Publish("_INBOX.a.5", proto.JudgeReplyOK())
	pubNC.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for tr.Acked() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := obs.Stop()
	if st.Requests != 3 || st.OKReplies != 3 || st.Reordered != 1 || st.Unanswered != 0 || st.EarlyOrphans != 1 || st.Missed() {
		t.Fatalf("observer stats %+v", st)
	}
	if got := tr.Stats(0); got.Acked != 4 || got.Unacked != 1 {
		t.Fatalf("acked %d unacked %d, want 4 and 1 (seq 4 never sent)", got.Acked, got.Unacked)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP kestrel_transfer_judge_retries_total Judge batches retried, by reason.
# TYPE kestrel_transfer_judge_retries_total counter
kestrel_transfer_judge_retries_total{reason="timeout"} 3
kestrel_transfer_judge_retries_total{reason="error_reply",x="a}b"} 2
kestrel_transfer_judge_requests_inflight 1
kestrel_transfer_judge_requests_inflight_other 9
`
	m, err := ParseMetrics(strings.NewReader(text), "kestrel_transfer_judge_retries_total", "kestrel_transfer_judge_requests_inflight", "absent")
	if err != nil {
		t.Fatal(err)
	}
	if m["kestrel_transfer_judge_retries_total"] != 5 || m["kestrel_transfer_judge_requests_inflight"] != 1 || len(m) != 2 {
		t.Fatalf("ParseMetrics = %v", m)
	}
	if _, err := ParseMetrics(strings.NewReader("absent x\n"), "absent"); err == nil {
		t.Fatal("bad value: no error")
	}
}

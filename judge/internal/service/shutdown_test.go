package service

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// holding is a Submitter that signals each request and holds it until the
// gate opens.
type holding struct {
	entered chan struct{}
	gate    chan struct{}
}

func (h *holding) Submit(_ []byte, done func(error)) {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.gate
	done(nil)
}

func newService(t *testing.T, eng Submitter, interval time.Duration, log *slog.Logger) (*Service, *prometheus.Registry, *nats.Conn, string) {
	t.Helper()
	srv := natstest.StartServer(t)
	reg := prometheus.NewRegistry()
	nc := connect(t, srv.ClientURL(), reg, log)
	subj, _ := proto.NewSubjects("kestrel")
	return New(nc, subj, "j1", eng, interval, NewMetrics(reg), log), reg, nc, srv.ClientURL()
}

// A draining judge must not heartbeat once its request subscription stops
// serving: a transfer that gets "no responders" drops the judge, and a beat
// after that re-admits it, so series would move back and forth for the
// whole shutdown. The observer sees, on one connection and so in server
// order, the members subject and the replies to probe requests sent to the
// judge's subject: "leave" must come before the first "no responders", and
// no beat may follow either. A request already held by the judge is still
// answered.
func TestNoHeartbeatAfterRequestsStop(t *testing.T) {
	const interval = 5 * time.Millisecond
	h := &holding{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	svc, _, _, url := newService(t, h, interval, slog.New(slog.NewTextHandler(io.Discard, nil)))

	obs, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(obs.Close)
	subj, _ := proto.NewSubjects("kestrel")
	ch := make(chan *nats.Msg, 1<<16)
	if _, err := obs.ChanSubscribe(subj.Members(), ch); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.ChanSubscribe("probe.>", ch); err != nil {
		t.Fatal(err)
	}
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}

	// What the observer saw, in order.
	var log []string
	collect := func() {
		for {
			select {
			case m := <-ch:
				switch {
				case m.Subject == subj.Members():
					mm, err := proto.DecodeMemberMsg(m.Data)
					if err != nil {
						t.Fatalf("bad member message: %v", err)
					}
					log = append(log, mm.Kind)
				case m.Header.Get("Status") == "503":
					log = append(log, "noresp")
				default:
					if err := proto.DecodeJudgeReply(m.Data); err != nil {
						t.Fatalf("reply to %s: %v", m.Subject, err)
					}
					log = append(log, "reply:"+m.Subject)
				}
			default:
				return
			}
		}
	}
	seen := func(what string) bool {
		for _, e := range log {
			if e == what {
				return true
			}
		}
		return false
	}
	// probe sends a request and waits until the server has handled it (a
	// "no responders" answer is queued to us before the PONG).
	n := 0
	probe := func() {
		n++
		body := proto.EncodeBatch([]proto.Point{{Endpoint: "h", Metric: "m", Value: 1, Timestamp: int64(n), Step: 60}})
		if err := obs.PublishRequest(svc.Subject(), "probe."+strings.Repeat("x", n%3+1), body); err != nil {
			t.Fatal(err)
		}
		if err := obs.Flush(); err != nil {
			t.Fatal(err)
		}
		collect()
	}

	wait.For(t, "a beat", 10*time.Second, func() bool { collect(); return seen(proto.MemberBeat) })
	// One request held in the judge while it shuts down.
	if err := obs.PublishRequest(svc.Subject(), "probe.held", proto.EncodeBatch([]proto.Point{{Endpoint: "h", Metric: "m", Value: 1, Timestamp: 1, Step: 60}})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("request not handled")
	}
	drained := make(chan error, 1)
	go func() { drained <- svc.Drain(t.Context()) }()
	wait.For(t, "no responders", 10*time.Second, func() bool { probe(); return seen("noresp") })
	// Keep the judge draining for many heartbeat intervals while watching.
	for end := time.Now().Add(40 * interval); time.Now().Before(end); {
		probe()
		time.Sleep(interval / 2)
	}
	close(h.gate)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not finish")
	}
	if err := svc.Leave(t.Context()); err != nil {
		t.Fatalf("leave after drain: %v", err)
	}
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the held request answered", 10*time.Second, func() bool { collect(); return seen("reply:probe.held") })

	leave, noresp := -1, -1
	for i, e := range log {
		switch {
		case e == proto.MemberLeave && leave < 0:
			leave = i
		case e == "noresp" && noresp < 0:
			noresp = i
		case e == proto.MemberLeave:
			t.Errorf("second leave at %d", i)
		case e == proto.MemberBeat && (leave >= 0 || noresp >= 0):
			t.Errorf("beat at %d after leave (at %d) or after the subscription stopped serving (no responders at %d)", i, leave, noresp)
		}
	}
	if leave < 0 || noresp < 0 || leave > noresp {
		t.Errorf("leave at %d, first no responders at %d: want the leave first", leave, noresp)
	}
	if t.Failed() {
		t.Logf("observed: %v", log)
	}
}

// deferred is a Submitter that answers later, like the engine's workers.
type deferred struct{ dones chan func(error) }

func (d *deferred) Submit(_ []byte, done func(error)) { d.dones <- done }

// A reply that cannot be sent is counted every time and logged at most
// once per interval.
func TestReplyErrorsCountedAndLogRateLimited(t *testing.T) {
	const sent = 5
	var logs syncbuf.Buffer
	d := &deferred{dones: make(chan func(error), sent)}
	svc, reg, nc, url := newService(t, d, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	transfer, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(transfer.Close)
	body := proto.EncodeBatch([]proto.Point{{Endpoint: "h", Metric: "m", Value: 1, Timestamp: 60, Step: 60}})
	for range sent {
		if err := transfer.PublishRequest(svc.Subject(), "transfer.inbox", body); err != nil {
			t.Fatal(err)
		}
	}
	var dones []func(error)
	for range sent {
		select {
		case done := <-d.dones:
			dones = append(dones, done)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d requests", len(dones), sent)
		}
	}
	nc.Close() // every reply now fails
	for _, done := range dones {
		done(nil)
	}
	if got := metricValue(t, reg, "kestrel_judge_reply_errors_total"); got != sent {
		t.Fatalf("reply errors %v, want %d", got, sent)
	}
	if got := strings.Count(logs.String(), "cannot reply to transfer"); got != 1 {
		t.Fatalf("logged %d reply errors within the interval, want 1:\n%s", got, logs.String())
	}
}

// Package natstest starts an embedded NATS server with JetStream for tests
// and provides Judge, a real NATS responder that behaves like a judge node
// on the wire (serves requests on its subject, replies +OK or -ERR,
// heartbeats on the members subject). It is a peer on a real server, not a
// mock of NATS.
package natstest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// StartServer starts an embedded server on a random port with JetStream
// storing in t.TempDir(); it is shut down on cleanup.
func StartServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Connect connects to s; closed on cleanup.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Judge is a judge-like responder.
type Judge struct {
	Node string
	subj proto.Subjects
	nc   *nats.Conn

	mu        sync.Mutex
	points    []proto.Point
	requests  int
	failNext  int
	moveNext  int
	moved     int
	refuse    func(proto.Point) bool
	poison    func(proto.Point) bool // points failed permanently, for ever
	failed    int                    // points failed permanently (attempts)
	retryNext int
	gate      chan struct{} // when non-nil, replies wait for it to close
	dead      bool          // killed: held requests are never answered

	incarnation int64
	seq         atomic.Uint64
	sub         *nats.Subscription
	stopBeat    chan struct{}
	beatDone    chan struct{}
}

// StartJudge connects a responder for node and starts heartbeats every
// interval. It is stopped on cleanup.
func StartJudge(t testing.TB, s *server.Server, subj proto.Subjects, node string, interval time.Duration) *Judge {
	t.Helper()
	j := &Judge{Node: node, subj: subj, nc: Connect(t, s), incarnation: time.Now().UnixNano()}
	sub, err := j.nc.Subscribe(subj.Judge(node), j.serve)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	j.sub = sub
	if err := j.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	j.startBeats(interval)
	t.Cleanup(j.Kill)
	return j
}

func (j *Judge) serve(m *nats.Msg) {
	pts, err := proto.DecodeBatch(m.Data)
	j.mu.Lock()
	j.requests++
	gate := j.gate
	j.mu.Unlock()
	if gate != nil {
		<-gate
	}
	j.mu.Lock()
	if j.dead {
		j.mu.Unlock()
		return
	}
	if j.failNext > 0 {
		j.failNext--
		j.mu.Unlock()
		_ = m.Respond(proto.JudgeReplyError(errTest))
		return
	}
	if err == nil && (j.poison != nil || j.retryNext > 0) {
		// Fail poison points permanently and, for the next retryNext
		// requests, every other point transiently; take the rest.
		var pf proto.PointFailures
		retry := j.retryNext > 0
		if retry {
			j.retryNext--
		}
		for i, p := range pts {
			switch {
			case j.poison != nil && j.poison(p):
				pf.Failed = proto.BitSet(pf.Failed, i)
				j.failed++
				pf.Reason = "WRONGTYPE Operation against a key holding the wrong kind of value"
			case retry:
				pf.Retry = proto.BitSet(pf.Retry, i)
			default:
				j.points = append(j.points, p)
			}
		}
		j.mu.Unlock()
		if len(pf.Failed)+len(pf.Retry) > 0 {
			if pf.Reason == "" {
				pf.Reason = "redis: connection refused"
			}
			_ = m.Respond(proto.JudgeReplyError(testErr(pf.Text())))
		} else {
			_ = m.Respond(proto.JudgeReplyOK())
		}
		return
	}
	if err == nil && j.moveNext > 0 {
		// Refuse some points with a MOVED bitmap, take the others.
		j.moveNext--
		bm := make([]byte, (len(pts)+7)/8)
		n := 0
		for i, p := range pts {
			if j.refuse(p) {
				bm[i/8] |= 1 << (i % 8)
				n++
				continue
			}
			j.points = append(j.points, p)
		}
		j.moved += n
		j.mu.Unlock()
		if n > 0 {
			_ = m.Respond(proto.JudgeReplyError(testErr(proto.MovedReply(bm))))
		} else {
			_ = m.Respond(proto.JudgeReplyOK())
		}
		return
	}
	if err == nil {
		j.points = append(j.points, pts...)
	}
	j.mu.Unlock()
	if err != nil {
		_ = m.Respond(proto.JudgeReplyError(err))
		return
	}
	_ = m.Respond(proto.JudgeReplyOK())
}

// MoveNext makes the next n requests refuse the points for which refuse
// is true with a MOVED reply (as a judge does for series it does not
// serve) and take the others.
func (j *Judge) MoveNext(n int, refuse func(proto.Point) bool) {
	j.mu.Lock()
	j.moveNext, j.refuse = n, refuse
	j.mu.Unlock()
}

// Poison makes every later request fail the points for which poison is
// true with a permanent failure (a POINTS reply, as a judge does for a
// point whose alarm write gets WRONGTYPE) and take the others; nil stops.
func (j *Judge) Poison(poison func(proto.Point) bool) {
	j.mu.Lock()
	j.poison = poison
	j.mu.Unlock()
}

// RetryNext makes the next n requests fail their points (but poison ones)
// transiently (a POINTS reply with the retry bitmap, as a judge does when
// Redis is unreachable).
func (j *Judge) RetryNext(n int) {
	j.mu.Lock()
	j.retryNext = n
	j.mu.Unlock()
}

// Failed returns how many point attempts were failed permanently.
func (j *Judge) Failed() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failed
}

// Moved returns how many points were refused with MOVED.
func (j *Judge) Moved() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.moved
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errTest = testErr("test judge refuses this batch")

func (j *Judge) startBeats(interval time.Duration) {
	j.stopBeat = make(chan struct{})
	j.beatDone = make(chan struct{})
	stop, done := j.stopBeat, j.beatDone
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			j.publish(proto.MemberBeat, interval)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (j *Judge) publish(kind string, interval time.Duration) {
	m := proto.MemberMsg{Node: j.Node, Kind: kind, Incarnation: j.incarnation, Seq: j.seq.Add(1), IntervalMS: interval.Milliseconds()}
	_ = j.nc.Publish(j.subj.Members(), m.Encode())
	_ = j.nc.Flush()
}

// StopBeats stops the heartbeats (the judge keeps serving).
func (j *Judge) StopBeats() {
	if j.stopBeat != nil {
		close(j.stopBeat)
		<-j.beatDone
		j.stopBeat = nil
	}
}

// ResumeBeats restarts heartbeats.
func (j *Judge) ResumeBeats(interval time.Duration) {
	j.StopBeats()
	j.startBeats(interval)
}

// Leave stops heartbeats and publishes a leave message.
func (j *Judge) Leave() {
	j.StopBeats()
	j.publish(proto.MemberLeave, 0)
}

// Restart simulates a new process: new incarnation, beats again.
func (j *Judge) Restart(interval time.Duration) {
	j.StopBeats()
	j.incarnation = time.Now().UnixNano()
	j.seq.Store(0)
	j.startBeats(interval)
}

// RestartWithIncarnation simulates a new process stamped with incarnation
// inc, e.g. lower than before (a restart on a host whose clock is behind).
func (j *Judge) RestartWithIncarnation(interval time.Duration, inc int64) {
	j.StopBeats()
	j.mu.Lock()
	j.incarnation = inc
	j.mu.Unlock()
	j.seq.Store(0)
	j.startBeats(interval)
}

// Incarnation returns the incarnation the judge's messages carry.
func (j *Judge) Incarnation() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.incarnation
}

// Kill stops serving and heartbeating at once (a crashed judge).
func (j *Judge) Kill() {
	j.mu.Lock()
	j.dead = true
	j.mu.Unlock()
	j.StopBeats()
	_ = j.sub.Unsubscribe()
	_ = j.nc.Flush()
	j.Release()
}

// FailNext makes the next n requests answer -ERR.
func (j *Judge) FailNext(n int) {
	j.mu.Lock()
	j.failNext = n
	j.mu.Unlock()
}

// Hold makes replies wait until Release.
func (j *Judge) Hold() {
	j.mu.Lock()
	if j.gate == nil {
		j.gate = make(chan struct{})
	}
	j.mu.Unlock()
}

// Release lets held replies go.
func (j *Judge) Release() {
	j.mu.Lock()
	if j.gate != nil {
		close(j.gate)
		j.gate = nil
	}
	j.mu.Unlock()
}

// Points returns a copy of every point accepted so far.
func (j *Judge) Points() []proto.Point {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]proto.Point(nil), j.points...)
}

// Requests returns how many requests arrived (answered or not).
func (j *Judge) Requests() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.requests
}

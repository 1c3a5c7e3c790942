// Package service is the judge's NATS service: it serves transfer
// requests on the judge's own subject (handing them to the engine and
// replying) and publishes its membership heartbeats and leave.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

// replyErrorLogEvery limits the logging of replies that could not be sent.
const replyErrorLogEvery = 10 * time.Second

// Pending limits of the request subscription. The engine applies
// backpressure itself (Submit blocks while the worker queues are full), so
// requests wait here; the limits only bound memory. A request dropped at
// the limit is counted (kestrel_judge_requests_dropped_total), never
// answered, and retried by the transfer after its request timeout.
const (
	DefaultPendingMsgs  = 100000
	DefaultPendingBytes = 1 << 30
)

// Submitter is the engine side of a request.
type Submitter interface {
	Submit(data []byte, done func(error))
}

// Service serves one judge node's subject and heartbeats for it.
type Service struct {
	nc       *nats.Conn
	subj     proto.Subjects
	node     string
	eng      Submitter
	interval time.Duration
	m        *Metrics
	log      *slog.Logger

	incarnation int64
	seq         uint64 // under mu
	mu          sync.Mutex
	sub         *nats.Subscription
	hbStop      chan struct{}
	hbDone      chan struct{}
	paused      bool // under mu: out of the ring until Rejoin (Pause)
	left        bool // under mu: Leave was called; never beats again
	replyLog    *ratelog.Limiter

	// Pending limits of the request subscription (set before Start).
	PendingMsgs, PendingBytes int
}

// New returns a service; Start subscribes and starts the heartbeats.
func New(nc *nats.Conn, subj proto.Subjects, node string, eng Submitter, interval time.Duration, m *Metrics, log *slog.Logger) *Service {
	return &Service{nc: nc, subj: subj, node: node, eng: eng, interval: interval, m: m, log: log, incarnation: time.Now().UnixNano(),
		replyLog: ratelog.New(replyErrorLogEvery), PendingMsgs: DefaultPendingMsgs, PendingBytes: DefaultPendingBytes}
}

// Subject returns the request subject.
func (s *Service) Subject() string { return s.subj.Judge(s.node) }

// Start subscribes to the node's subject (no queue group: only this node
// owns it), then beats once at once and every interval after.
func (s *Service) Start() error {
	sub, err := s.nc.Subscribe(s.Subject(), s.handle)
	if err != nil {
		return fmt.Errorf("cannot subscribe to %s: %w", s.Subject(), err)
	}
	if err := sub.SetPendingLimits(s.PendingMsgs, s.PendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("cannot set pending limits on %s: %w", s.Subject(), err)
	}
	var lastDropped atomic.Int64 // the subscription's count is gone once it is closed
	s.m.registerRequestSubscription(
		func() float64 { n, _, _ := sub.Pending(); return float64(max(n, 0)) },
		func() float64 {
			if n, err := sub.Dropped(); err == nil {
				lastDropped.Store(int64(n))
			}
			return float64(lastDropped.Load())
		},
	)
	s.mu.Lock()
	s.sub = sub
	s.mu.Unlock()
	// Make sure the subscription is known to the server before announcing
	// ourselves, or the first requests find no responder.
	if err := s.nc.Flush(); err != nil {
		s.log.Warn("nats flush after subscribe failed", "err", err)
	}
	s.startBeats()
	return nil
}

// startBeats starts the heartbeats unless they run, the service is paused
// or has left, or is not started.
func (s *Service) startBeats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hbStop != nil || s.paused || s.left || s.sub == nil {
		return
	}
	s.hbStop, s.hbDone = make(chan struct{}), make(chan struct{})
	go s.beat(s.hbStop, s.hbDone)
}

// Pause takes the node out of the ring while it cannot serve (its ring
// parameters differ from the shared ones): it stops the heartbeats and
// publishes a leave, as Leave does, so transfers route its series to
// other judges instead of sending them here to be refused. Requests still
// arriving are answered (MOVED). Rejoin ends it.
func (s *Service) Pause(ctx context.Context) error {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
	return s.stopBeats(ctx)
}

// Rejoin starts the heartbeats again after Pause (the transfers re-admit
// the node after their rejoin hold); it does nothing after Leave.
func (s *Service) Rejoin() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	s.startBeats()
}

func (s *Service) handle(msg *nats.Msg) {
	s.eng.Submit(msg.Data, func(err error) {
		if msg.Reply == "" {
			return
		}
		reply := proto.JudgeReplyOK()
		if err != nil {
			reply = proto.JudgeReplyError(err)
		}
		if rerr := msg.Respond(reply); rerr != nil {
			// The transfer's request times out and it sends the points
			// again; the alarm writes are idempotent (CAS).
			s.m.ReplyErrors.Inc()
			if ok, suppressed := s.replyLog.Allow("reply"); ok {
				s.log.Warn("cannot reply to transfer", "err", rerr, "suppressed", suppressed)
			}
		}
	})
}

func (s *Service) publish(kind string) error {
	s.mu.Lock()
	s.seq++
	m := proto.MemberMsg{Node: s.node, Kind: kind, Incarnation: s.incarnation, Seq: s.seq, IntervalMS: s.interval.Milliseconds()}
	s.mu.Unlock()
	return s.nc.Publish(s.subj.Members(), m.Encode())
}

func (s *Service) beat(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if err := s.publish(proto.MemberBeat); err != nil {
			s.m.HeartbeatErrors.Inc()
			s.log.Warn("cannot publish heartbeat", "err", err)
		} else {
			s.m.Heartbeats.Inc()
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// Drain stops taking requests: it first leaves (see Leave: no heartbeat
// may follow, or the transfers, finding no responder, would drop this node
// and re-admit it on the next beat), then drains the subscription:
// messages already received are still handled, until ctx ends.
func (s *Service) Drain(ctx context.Context) error {
	leaveErr := s.Leave(ctx)
	s.mu.Lock()
	sub := s.sub
	s.mu.Unlock()
	if sub == nil {
		return leaveErr
	}
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	if err := sub.Drain(); err != nil {
		return errors.Join(leaveErr, fmt.Errorf("cannot drain %s: %w", sub.Subject, err))
	}
	select {
	case <-closed:
		return leaveErr
	case <-ctx.Done():
		_ = sub.Unsubscribe()
		return errors.Join(leaveErr, fmt.Errorf("draining %s: %w", sub.Subject, ctx.Err()))
	}
}

// Leave stops the heartbeats and publishes a "leave" (flushed), so the
// transfers take this node out of their ring at once and send no more
// requests to it; requests already sent are still answered (or time out
// and are sent again to the new owner). It runs once; later calls (and
// Drain, which calls it first) do nothing more.
func (s *Service) Leave(ctx context.Context) error {
	s.mu.Lock()
	s.left = true
	s.mu.Unlock()
	return s.stopBeats(ctx)
}

// stopBeats stops the heartbeats and publishes a leave (flushed) when they
// ran.
func (s *Service) stopBeats(ctx context.Context) error {
	s.mu.Lock()
	stop, done := s.hbStop, s.hbDone
	s.hbStop = nil
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	close(stop)
	<-done
	if err := s.publish(proto.MemberLeave); err != nil {
		return fmt.Errorf("cannot publish leave: %w", err)
	}
	flush := s.nc.Flush // its own timeout when ctx has no deadline
	if _, ok := ctx.Deadline(); ok {
		flush = func() error { return s.nc.FlushWithContext(ctx) }
	}
	if err := flush(); err != nil {
		return fmt.Errorf("cannot flush leave: %w", err)
	}
	return nil
}

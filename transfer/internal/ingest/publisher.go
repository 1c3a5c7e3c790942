package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors of Publish; each one is retryable by the client.
var (
	ErrBusy        = errors.New("too many points waiting to be stored, retry later")
	ErrUnavailable = errors.New("the ingest stream cannot store points now, retry later")
	ErrStopping    = errors.New("the transfer is stopping, retry on another")
)

// Config configures a Publisher.
type Config struct {
	Subject          string        // <prefix>.ingest.<source>
	Stream           string        // the ingest stream (expected by every publish)
	MsgIDPrefix      string        // unique per transfer incarnation
	BatchPoints      int           // a batch is sealed at this many points
	MaxBatchBytes    int           // or at this encoded size (under the server's max payload)
	Linger           time.Duration // or this long after its first point
	PublishTimeout   time.Duration // wait for one PubAck
	Workers          int           // batches published at once
	MaxPendingPoints int           // accepted and not yet stored, in total
	MaxWait          time.Duration // a request waits this long for room, then ErrBusy
}

// Publisher batches and publishes points. Publish may be called from any
// number of goroutines.
type Publisher struct {
	cfg Config
	js  jetstream.JetStream
	met *Metrics
	log *slog.Logger
	rl  *ratelog.Limiter

	room roomGate

	msgSeq atomic.Uint64

	mu       sync.Mutex
	cur      *batch
	stopping bool
	sealed   chan *batch
	free     sync.Pool
	workers  sync.WaitGroup
}

// batch is one ingest message being filled or published.
type batch struct {
	enc     proto.Encoder
	points  int
	waiters []*waiter
	data    []byte
}

// waiter is one Publish call waiting for the batches carrying its points.
type waiter struct {
	pending atomic.Int32
	failed  atomic.Pointer[error]
	done    chan struct{}
}

// NewPublisher starts cfg.Workers publishing goroutines; Stop ends them.
func NewPublisher(cfg Config, js jetstream.JetStream, met *Metrics, log *slog.Logger) *Publisher {
	cfg.Workers = max(cfg.Workers, 1)
	cfg.BatchPoints = max(cfg.BatchPoints, 1)
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 512 << 10
	}
	cfg.MaxPendingPoints = max(cfg.MaxPendingPoints, cfg.BatchPoints)
	p := &Publisher{cfg: cfg, js: js, met: met, log: log, rl: ratelog.New(10 * time.Second),
		sealed: make(chan *batch, cfg.Workers)}
	p.room.init(cfg.MaxPendingPoints)
	p.free.New = func() any { return &batch{} }
	for range cfg.Workers {
		p.workers.Go(p.work)
	}
	return p
}

// Publish stores pts (valid points) and returns nil once every one of
// them is in the stream, or ErrBusy, ErrUnavailable, ErrStopping or ctx's
// error: the client must then send them again (some may be stored: the
// judge ignores a point it already has). pts may be reused when Publish
// returns.
func (p *Publisher) Publish(ctx context.Context, pts []proto.Point) error {
	if len(pts) == 0 {
		return nil
	}
	n := min(len(pts), p.cfg.MaxPendingPoints)
	if err := p.room.acquire(ctx, n, p.cfg.MaxWait); err != nil {
		return err
	}
	p.met.PendingPoints.Add(float64(len(pts)))
	w := &waiter{done: make(chan struct{})}
	w.pending.Store(1) // held until every point is placed
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		p.room.release(n)
		p.met.PendingPoints.Sub(float64(len(pts)))
		return ErrStopping
	}
	for i := range pts {
		b := p.cur
		if b == nil {
			b = p.newBatchLocked()
		}
		b.enc.Add(&pts[i])
		b.points++
		if k := len(b.waiters); k == 0 || b.waiters[k-1] != w {
			b.waiters = append(b.waiters, w)
			w.pending.Add(1)
		}
		if b.points >= p.cfg.BatchPoints || b.enc.Len() >= p.cfg.MaxBatchBytes {
			p.sealLocked()
		}
	}
	p.mu.Unlock()
	// Room beyond MaxPendingPoints (one request larger than the whole
	// budget) is not taken: give back what the batches will release.
	if extra := len(pts) - n; extra > 0 {
		p.room.borrow(extra)
	}
	w.finish(nil)
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err() // its points are stored or not; the client retries
	}
	if e := w.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// newBatchLocked starts the current batch and its linger timer.
func (p *Publisher) newBatchLocked() *batch {
	b := p.free.Get().(*batch)
	p.cur = b
	time.AfterFunc(p.cfg.Linger, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cur == b {
			p.sealLocked()
		}
	})
	return b
}

// sealLocked hands the current batch to the workers (waiting while they
// are all busy: back-pressure on every Publish).
func (p *Publisher) sealLocked() {
	b := p.cur
	p.cur = nil
	p.sealed <- b
}

func (p *Publisher) work() {
	for b := range p.sealed {
		p.publish(b)
	}
}

// publish stores one batch and answers its waiters.
func (p *Publisher) publish(b *batch) {
	b.data = b.enc.AppendTo(b.data[:0])
	msg := &nats.Msg{Subject: p.cfg.Subject, Data: b.data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, p.msgID())
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.PublishTimeout)
	start := time.Now()
	_, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(p.cfg.Stream), jetstream.WithRetryAttempts(0))
	cancel()
	p.met.PublishDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		p.met.Batches[resultError].Inc()
		p.met.PointsUnstored.Add(float64(b.points))
		if ok, c := p.rl.Allow("publish"); ok {
			p.log.Warn("cannot store points in the ingest stream: their clients get a retryable error", "points", b.points,
				"subject", p.cfg.Subject, "err", err, "suppressed", c)
		}
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	} else {
		p.met.Batches[resultOK].Inc()
		p.met.PointsStored.Add(float64(b.points))
	}
	for _, w := range b.waiters {
		w.finish(err)
	}
	p.room.release(b.points)
	p.met.PendingPoints.Sub(float64(b.points))
	clear(b.waiters)
	b.waiters, b.points = b.waiters[:0], 0
	b.enc.Reset()
	p.free.Put(b)
}

// msgID returns the next Nats-Msg-Id: unique per transfer incarnation.
func (p *Publisher) msgID() string {
	return p.cfg.MsgIDPrefix + "-" + strconv.FormatUint(p.msgSeq.Add(1), 10)
}

// finish counts one batch of w done (err: failed).
func (w *waiter) finish(err error) {
	if err != nil {
		w.failed.CompareAndSwap(nil, &err)
	}
	if w.pending.Add(-1) == 0 {
		close(w.done)
	}
}

// Stop seals the current batch, publishes what is sealed and stops the
// workers, within ctx; Publish calls after it get ErrStopping.
func (p *Publisher) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		if p.cur != nil {
			p.sealLocked()
		}
		close(p.sealed)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest batches still being published: %w", ctx.Err())
	}
}

// Accepted counts n valid points of a request of listener.
func (p *Publisher) Accepted(listener string, n int) {
	p.met.Requests.WithLabelValues(listener).Inc()
	p.met.PointsAccepted.WithLabelValues(listener).Add(float64(n))
}

// Rejected counts an invalid point of listener and logs it, at most once
// per 10 s per listener and reason.
func (p *Publisher) Rejected(listener string, r proto.Reason, endpoint, metric string) {
	p.met.Rejected.WithLabelValues(listener, r.String()).Inc()
	if ok, c := p.rl.Allow("rejected:" + listener + ":" + r.String()); ok {
		p.log.Warn("point rejected", "listener", listener, "reason", r.String(), "why", r.Text(),
			"endpoint", endpoint, "metric", metric, "suppressed", c)
	}
}

// Refused counts a request or connection of listener turned away (reason:
// a Refused* constant) and logs it, at most once per 10 s per listener and
// reason.
func (p *Publisher) Refused(listener, reason string, err error) {
	p.met.Refused.WithLabelValues(listener, reason).Inc()
	if ok, c := p.rl.Allow("refused:" + listener + ":" + reason); ok {
		p.log.Warn("client request refused", "listener", listener, "reason", reason, "err", err, "suppressed", c)
	}
}

// RefusalOf returns the refusal reason of a Publish error.
func RefusalOf(err error) string {
	switch {
	case errors.Is(err, ErrBusy):
		return RefusedBusy
	case errors.Is(err, ErrStopping):
		return RefusedStopping
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return RefusedTimeout
	default:
		return RefusedUnavailable
	}
}

// Metrics returns the listeners' metrics (connections are counted by the
// listeners).
func (p *Publisher) Metrics() *Metrics { return p.met }

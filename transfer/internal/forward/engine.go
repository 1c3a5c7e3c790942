package forward

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Msg is the part of a JetStream message the engine uses (jetstream.Msg
// satisfies it).
type Msg interface {
	Data() []byte
	Ack() error
	Nak() error
	NakWithDelay(time.Duration) error
	InProgress() error
	Term() error
}

// Config configures an Engine.
type Config struct {
	MinStep         int32
	BatchPoints     int
	MaxBatchBytes   int // seal a judge batch at this encoded size (under the server's max payload)
	Linger          time.Duration
	RequestTimeout  time.Duration
	RetryBackoff    time.Duration
	MaxBackoff      time.Duration
	MaxInflight     int           // requests per judge (halved down to 1 while the judge is slow)
	MovedRetry      time.Duration // hold of a judge that answered MOVED before its refused points are sent again
	FetchBatch      int
	FetchWait       time.Duration
	InProgressEvery time.Duration
	NakDelay        time.Duration
	ShutdownTimeout time.Duration
	// Gate, when set, can forbid fetching: while Blocked returns a reason
	// (the ring parameters differ from the shared bucket's) the fetch loop
	// pauses as it does when no judge is alive.
	Gate Gate
	// DeadLetter, when set, keeps points a judge failed permanently
	// DeadLetterAfter times (0: they are retried for ever).
	DeadLetter      DeadLetter
	DeadLetterAfter int
}

// Gate tells the fetch loop whether it may fetch.
type Gate interface {
	// Blocked returns why fetching must pause, or "" when it may go on.
	Blocked() string
	// Changed returns a channel closed at the next change of Blocked.
	Changed() <-chan struct{}
}

// inMsg is an ingest message held until its points are all accepted.
type inMsg struct {
	msg         Msg
	points      []proto.Point // valid, normalised copies; tags in tags
	tags        []proto.Tag
	outstanding int
	fails       []uint16 // permanent failures per point (nil: none yet)
	lastMark    time.Time
	prev, next  *inMsg
}

// ref names one point of a held message.
type ref struct {
	m *inMsg
	i int32
}

// batch is one request to one judge.
type batch struct {
	js      *judgeQueue
	enc     proto.Encoder
	refs    []ref
	data    []byte
	started time.Time // first point added
	err     error
	dur     time.Duration
}

// judgeQueue is the engine's queue and state for one judge node: its
// open batch, sealed batches, requests in flight, limit and backoff.
type judgeQueue struct {
	node      string
	subject   string
	cur       *batch
	ready     []*batch
	inflight  int
	limit     int // requests in flight allowed: MaxInflight, halved per timeout, +1 per reply
	slow      bool
	failures  int
	holdUntil time.Time
	pending   int // points queued or in flight
	gauge     prometheus.Gauge
	slowGauge prometheus.Gauge
}

// Engine is the data path. Create with New, run with Run.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	rl   *ratelog.Limiter
	met  *Metrics
	mem  *membership.Membership
	nc   *nats.Conn
	subj proto.Subjects

	in        chan Msg
	results   chan *batch
	dlResults chan *dlBatch
	done      chan struct{}

	// Owned by the loop goroutine.
	dec         proto.Decoder
	keyBuf      []byte
	ring        *ring.Ring // what points are routed on: the membership's, or idle while it warms up
	idle        *ring.Ring // no member: every point is parked
	ready       bool       // the membership's warm-up is over
	judges      map[string]*judgeQueue
	parked      []ref
	moved       []ref
	head, tail  *inMsg
	held        int
	pending     int
	inflight    int
	stopping    bool
	freeMsgs    []*inMsg
	freeBatches []*batch
	delayed     []delayedRef // failed points waiting a backoff step, oldest first
	dlWaiting   []*dlBatch   // dead letters to publish again
	dlInflight  int
}

// New returns an engine; nc may be nil only in benchmarks that never send.
func New(cfg Config, subj proto.Subjects, nc *nats.Conn, mem *membership.Membership, met *Metrics, log *slog.Logger) *Engine {
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 512 << 10
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 1
	}
	if cfg.MovedRetry <= 0 {
		cfg.MovedRetry = 100 * time.Millisecond
	}
	e := &Engine{
		cfg: cfg, log: log, rl: ratelog.New(10 * time.Second), met: met, mem: mem, nc: nc, subj: subj,
		in:        make(chan Msg, max(cfg.FetchBatch, 1)),
		results:   make(chan *batch, 64),
		dlResults: make(chan *dlBatch, 16),
		done:      make(chan struct{}),
		judges:    make(map[string]*judgeQueue),
		keyBuf:    make([]byte, 0, 1024),
	}
	e.idle, _ = ring.New(nil, ring.Config{PartitionCount: 1, ReplicationFactor: 1, Load: 1.25})
	e.ring = e.idle
	return e
}

// Run fetches from cons and forwards until ctx ends, then shuts down in
// order: stop fetching, flush queued points, wait (at most
// ShutdownTimeout) for in-flight judge requests, and Nak every message
// still unacknowledged so JetStream redelivers it.
func (e *Engine) Run(ctx context.Context, cons jetstream.Consumer) error {
	defer close(e.done)
	// Held messages must be marked well within the consumer's ack_wait or
	// they are redelivered while this transfer still holds them. The
	// consumer's settings win over the config (stream.Keeper): follow them.
	if info := cons.CachedInfo(); info != nil && info.Config.AckWait > 0 && e.cfg.InProgressEvery > info.Config.AckWait/3 {
		e.log.Warn("consumer ack_wait shorter than 3 × in_progress_every: marking held messages every ack_wait/3",
			"ack_wait", info.Config.AckWait, "in_progress_every", e.cfg.InProgressEvery, "marking_every", info.Config.AckWait/3)
		e.cfg.InProgressEvery = info.Config.AckWait / 3
	}
	fetchCtx, cancelFetch := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.fetchLoop(fetchCtx, cons) })
	defer func() { cancelFetch(); wg.Wait() }()

	changed := e.mem.Changed()
	e.met.WarmingUp.Set(1)
	e.log.Info("routing held until the membership's warm-up is over (every live judge heard)", "warm_up", e.mem.WarmUp())
	e.syncRing(time.Now())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	markEvery := max(e.cfg.InProgressEvery/4, 10*time.Millisecond)
	marks := time.NewTicker(markEvery)
	defer marks.Stop()
	for {
		select {
		case <-ctx.Done():
			cancelFetch()
			wg.Wait()
			e.shutdown()
			return nil
		case m := <-e.in:
			e.handle(m, time.Now())
		case b := <-e.results:
			e.complete(b, time.Now())
		case d := <-e.dlResults:
			e.deadLettered(d, time.Now())
		case <-changed:
			changed = e.mem.Changed()
			e.syncRing(time.Now())
		case <-timer.C:
		case now := <-marks.C:
			e.markProgress(now)
		}
		now := time.Now()
		if next := e.pump(now); !next.IsZero() {
			timer.Reset(max(next.Sub(now), 0))
		}
	}
}

package forward

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/metrics"
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
	js      *judge
	enc     proto.Encoder
	refs    []ref
	data    []byte
	started time.Time // first point added
	err     error
	dur     time.Duration
}

// judge is the engine's state for one judge node.
type judge struct {
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
	met  *metrics.Metrics
	mem  *membership.Membership
	nc   *nats.Conn
	subj proto.Subjects

	in        chan Msg
	results   chan *batch
	dlResults chan *dlBatch
	done      chan struct{}
	fm        *failMetrics

	// Owned by the loop goroutine.
	dec         proto.Decoder
	keyBuf      []byte
	ring        *ring.Ring // what points are routed on: the membership's, or idle while it warms up
	idle        *ring.Ring // no member: every point is parked
	ready       bool       // the membership's warm-up is over
	judges      map[string]*judge
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
func New(cfg Config, subj proto.Subjects, nc *nats.Conn, mem *membership.Membership, met *metrics.Metrics, log *slog.Logger) *Engine {
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
		judges:    make(map[string]*judge),
		keyBuf:    make([]byte, 0, 1024),
	}
	var reg prometheus.Registerer
	if met != nil {
		reg = met.Registry
	}
	e.fm = newFailMetrics(reg)
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

func (e *Engine) fetchLoop(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		if !e.waitFetchable(ctx) {
			return
		}
		b, err := cons.Fetch(e.cfg.FetchBatch, jetstream.FetchMaxWait(e.cfg.FetchWait))
		if err != nil {
			e.fetchError(ctx, err)
			continue
		}
		for m := range b.Messages() {
			select {
			case e.in <- m:
			case <-ctx.Done():
				// Not routed: hand it back for another transfer.
				if err := m.Nak(); err != nil {
					e.msgOpFailed(metrics.OpNak, err)
				} else {
					e.met.MessagesNaked.WithLabelValues(metrics.NakShutdown).Inc()
				}
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			e.fetchError(ctx, err)
		}
	}
}

// waitFetchable returns true at once when fetching may go on, else
// pauses (kestrel_transfer_fetch_paused 1) until the gate opens and a
// judge is alive; false when ctx ends first.
func (e *Engine) waitFetchable(ctx context.Context) bool {
	paused := ""
	for {
		memChanged := e.mem.Changed()
		var gateChanged <-chan struct{}
		why := ""
		if e.cfg.Gate != nil {
			gateChanged = e.cfg.Gate.Changed()
			why = e.cfg.Gate.Blocked()
		}
		if why == "" && !e.mem.Ready() {
			why = "membership warming up"
		}
		if why == "" && e.mem.Ring().Len() == 0 {
			why = "no judge alive"
		}
		if why == "" {
			if paused != "" {
				e.met.FetchPaused.Set(0)
				e.log.Info("fetching resumed", "members", e.mem.Ring().Len())
			}
			return true
		}
		if why != paused {
			e.met.FetchPaused.Set(1)
			e.log.Warn("fetching paused", "reason", why, "members", e.mem.Ring().Len())
			paused = why
		}
		select {
		case <-memChanged:
		case <-gateChanged:
		case <-ctx.Done():
			return false
		}
	}
}

func (e *Engine) fetchError(ctx context.Context, err error) {
	e.met.FetchErrors.Inc()
	if n, ok := e.rl.Allow("fetch"); ok {
		e.log.Warn("fetch failed", "err", err, "suppressed", n)
	}
	t := time.NewTimer(min(e.cfg.FetchWait, time.Second))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handle decodes one ingest message and routes its valid points.
func (e *Engine) handle(msg Msg, now time.Time) {
	e.met.MessagesReceived.Inc()
	pts, err := e.dec.Decode(msg.Data())
	if err != nil {
		if proto.IsVersionError(err) {
			if err := msg.NakWithDelay(e.cfg.NakDelay); err != nil {
				e.msgOpFailed(metrics.OpNak, err)
			} else {
				e.met.MessagesNaked.WithLabelValues(metrics.NakVersion).Inc()
			}
			if n, ok := e.rl.Allow("version"); ok {
				e.log.Warn("batch from a newer codec: nak for redelivery to an upgraded transfer", "err", err, "delay", e.cfg.NakDelay, "suppressed", n)
			}
			return
		}
		if err := msg.Term(); err != nil {
			e.msgOpFailed(metrics.OpTerm, err)
		} else {
			e.met.MessagesTerminated.WithLabelValues(metrics.TermMalformed).Inc()
		}
		if n, ok := e.rl.Allow("malformed"); ok {
			e.log.Warn("malformed batch terminated", "err", err, "suppressed", n)
		}
		return
	}
	e.met.PointsReceived.Add(float64(len(pts)))
	m := e.newMsg(msg)
	ntags := 0
	for i := range pts {
		ntags += len(pts[i].Tags)
	}
	// Grow once so the appends below never move earlier points' tags.
	m.tags = slices.Grow(m.tags[:0], ntags)
	m.points = m.points[:0]
	unix := now.Unix()
	for i := range pts {
		p := &pts[i]
		if r := proto.ValidatePoint(p, unix); r != proto.OK {
			e.reject(r, p)
			continue
		}
		if p.Step < e.cfg.MinStep {
			p.Step = e.cfg.MinStep
		}
		p.Timestamp = proto.AlignTimestamp(p.Timestamp, p.Step)
		cp := *p
		if len(p.Tags) > 0 {
			s := len(m.tags)
			m.tags = append(m.tags, p.Tags...)
			cp.Tags = m.tags[s:len(m.tags):len(m.tags)]
		}
		m.points = append(m.points, cp)
	}
	if len(m.points) == 0 {
		e.ack(m)
		e.freeMsg(m)
		return
	}
	m.outstanding = len(m.points)
	m.lastMark = now
	e.link(m)
	e.pending += len(m.points)
	for i := range m.points {
		e.route(ref{m: m, i: int32(i)}, now)
	}
}

func (e *Engine) reject(r proto.Reason, p *proto.Point) {
	e.met.RejectedCounter(r).Inc()
	if n, ok := e.rl.Allow(r.String()); ok {
		e.log.Warn("point rejected", "reason", r.String(), "why", r.Text(), "endpoint", p.Endpoint, "metric", p.Metric, "suppressed", n)
	}
}

// route puts one point in the pending batch of its owner on the engine's
// ring, or parks it when no judge is alive.
func (e *Engine) route(r ref, now time.Time) {
	p := &r.m.points[r.i]
	e.keyBuf = proto.AppendSeriesKey(e.keyBuf[:0], p.Endpoint, p.Metric, p.Tags)
	node, ok := e.ring.Locate(e.keyBuf)
	if !ok {
		e.parked = append(e.parked, r)
		return
	}
	js := e.judges[node]
	if js.cur == nil {
		js.cur = e.newBatch(js)
		js.cur.started = now
	}
	b := js.cur
	b.enc.Add(p)
	b.refs = append(b.refs, r)
	js.pending++
	if len(b.refs) >= e.cfg.BatchPoints || b.enc.Len() >= e.cfg.MaxBatchBytes {
		js.ready = append(js.ready, b)
		js.cur = nil
	}
}

// syncRing adopts the membership's current ring: judges that left give
// their queued points back to be re-located, parked points are placed.
// While the membership warms up (after the start or a NATS reconnect) the
// ring adopted is idle: every point is parked until every live judge has
// been heard, so series are not all sent to the first judge heard.
func (e *Engine) syncRing(now time.Time) {
	if ready := e.mem.Ready(); ready != e.ready {
		e.ready = ready
		if ready {
			e.met.WarmingUp.Set(0)
			e.log.Info("membership warm-up over: routing", "members", e.mem.Ring().Len(), "parked_points", len(e.parked))
		} else {
			e.met.WarmingUp.Set(1)
			e.log.Warn("membership warming up (nats reconnected): routing held, points parked", "warm_up", e.mem.WarmUp())
		}
	}
	r := e.idle
	if e.ready {
		r = e.mem.Ring()
	}
	if r == e.ring {
		return
	}
	e.ring = r
	for _, n := range r.Members() {
		if e.judges[n] == nil {
			e.judges[n] = &judge{node: n, subject: e.subj.Judge(n), limit: e.cfg.MaxInflight,
				gauge: e.met.JudgePendingPoints.WithLabelValues(n), slowGauge: e.met.JudgeSlow.WithLabelValues(n)}
			e.judges[n].slowGauge.Set(0)
		}
	}
	moved := e.moved[:0]
	for n, js := range e.judges {
		if r.Has(n) {
			continue
		}
		if js.cur != nil {
			moved = append(moved, js.cur.refs...)
			js.pending -= len(js.cur.refs)
			e.freeBatch(js.cur)
			js.cur = nil
		}
		for _, b := range js.ready {
			moved = append(moved, b.refs...)
			js.pending -= len(b.refs)
			e.freeBatch(b)
		}
		js.ready = js.ready[:0]
		e.forget(js)
	}
	moved = append(moved, e.parked...)
	e.parked = e.parked[:0]
	for _, rf := range moved {
		e.route(rf, now)
	}
	clear(moved)
	e.moved = moved[:0]
}

// forget drops a judge that is out of the ring and has nothing in flight.
func (e *Engine) forget(js *judge) {
	if js.inflight > 0 || js.cur != nil || len(js.ready) > 0 || e.ring.Has(js.node) {
		return
	}
	delete(e.judges, js.node)
	e.met.JudgePendingPoints.DeleteLabelValues(js.node)
	e.met.JudgeSlow.DeleteLabelValues(js.node)
}

// pump seals batches whose linger passed and sends ready batches within
// each judge's in-flight limit (lowered while it is slow) and retry hold. It returns the next time it
// needs to run (zero for none).
func (e *Engine) pump(now time.Time) time.Time {
	var next time.Time
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if !e.stopping {
		if t := e.pumpFailed(now); !t.IsZero() {
			soonest(t)
		}
	}
	for _, js := range e.judges {
		if js.cur != nil {
			if due := js.cur.started.Add(e.cfg.Linger); e.stopping || !now.Before(due) {
				js.ready = append(js.ready, js.cur)
				js.cur = nil
			} else {
				soonest(due)
			}
		}
		for len(js.ready) > 0 && (e.stopping || js.inflight < js.limit) {
			if !e.stopping && now.Before(js.holdUntil) {
				soonest(js.holdUntil)
				break
			}
			b := js.ready[0]
			copy(js.ready, js.ready[1:])
			js.ready[len(js.ready)-1] = nil
			js.ready = js.ready[:len(js.ready)-1]
			e.send(js, b)
		}
		js.gauge.Set(float64(js.pending))
	}
	e.met.PendingPoints.Set(float64(e.pending))
	e.met.ParkedPoints.Set(float64(len(e.parked)))
	e.met.MessagesHeld.Set(float64(e.held))
	e.met.JudgeInflight.Set(float64(e.inflight))
	return next
}

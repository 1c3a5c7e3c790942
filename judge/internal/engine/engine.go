package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/kestrel-mon/kestrel/judge/internal/alarm"
	"github.com/kestrel-mon/kestrel/judge/internal/metrics"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/window"
	"github.com/kestrel-mon/kestrel/proto"
)

// maxCASAttempts bounds the decide/write loop of one alarm.
const maxCASAttempts = 8

// Config configures an Engine.
type Config struct {
	WindowSize  int           // points a function may use (capacity is one more, for rates)
	IdleEvict   time.Duration // wall time without points after which a series is dropped
	MinInterval int64         // seconds between repeated PROBLEM events (point time)
	Workers     int           // shards / worker goroutines
	QueueLen    int           // parts queued per worker
	OpTimeout   time.Duration // per Redis operation
}

// Engine holds the windows and runs the rules.
type Engine struct {
	cfg    Config
	rules  *rules.Holder
	store  *alarm.Store
	m      *metrics.Metrics
	log    *slog.Logger
	shards []*shard

	subMu    sync.Mutex
	closed   bool // under subMu: Submit refuses work
	dec      proto.Decoder
	keyBuf   []byte
	dispatch []int // shard indexes of the current request (under subMu)
	reqPool  sync.Pool

	series   atomic.Int64
	inflight sync.WaitGroup
	workers  sync.WaitGroup
	stopOnce sync.Once
	started  atomic.Bool

	ctx context.Context
}

// New builds an engine. Start launches its workers.
func New(cfg Config, rh *rules.Holder, store *alarm.Store, m *metrics.Metrics, log *slog.Logger) *Engine {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.QueueLen < 1 {
		cfg.QueueLen = 1
	}
	if cfg.WindowSize < 1 {
		cfg.WindowSize = 11
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 3 * time.Second
	}
	e := &Engine{cfg: cfg, rules: rh, store: store, m: m, log: log, ctx: context.Background()}
	for i := 0; i < cfg.Workers; i++ {
		e.shards = append(e.shards, &shard{
			e:      e,
			series: map[string]*series{},
			ch:     make(chan *part, cfg.QueueLen),
			vals:   make([]float64, cfg.WindowSize+1),
			ts:     make([]int64, cfg.WindowSize+1),
		})
	}
	e.reqPool.New = func() any {
		r := &request{e: e, parts: make([]part, len(e.shards))}
		for i := range r.parts {
			r.parts[i].req = r
		}
		return r
	}
	m.QueueDepth(func() float64 {
		n := 0
		for _, s := range e.shards {
			n += len(s.ch)
		}
		return float64(n)
	})
	return e
}

// Start launches the workers and the idle sweep; they stop with Stop (the
// sweep also with ctx).
func (e *Engine) Start(ctx context.Context) {
	e.ctx = ctx
	e.started.Store(true)
	for _, s := range e.shards {
		e.workers.Add(1)
		go func() {
			defer e.workers.Done()
			s.run()
		}()
	}
	every := min(max(e.cfg.IdleEvict/10, time.Second), time.Minute)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				e.Sweep(now)
			}
		}
	}()
}

// Stop waits for the submitted requests to be answered and stops the
// workers. Submit calls made after Stop began are answered with an error.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() {
		// Taking subMu waits for a Submit in progress; later ones refuse.
		e.subMu.Lock()
		e.closed = true
		e.subMu.Unlock()
		e.inflight.Wait()
		for _, s := range e.shards {
			close(s.ch)
		}
		e.workers.Wait()
	})
}

// Submit decodes a batch and queues its points to the workers; done is
// called exactly once, from a worker (or from Submit for an undecodable or
// empty batch), after every point is processed: nil, or the first error.
// Submit blocks while the worker queues are full. Submit calls are
// serialised.
func (e *Engine) Submit(data []byte, done func(error)) {
	start := time.Now()
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.closed {
		e.m.RequestsError.Inc()
		done(errors.New("judge is stopping"))
		return
	}
	pts, err := e.dec.Decode(data)
	if err != nil {
		e.m.RequestsBad.Inc()
		done(fmt.Errorf("cannot decode batch: %w", err))
		return
	}
	e.m.PointsReceived.Add(float64(len(pts)))
	req := e.reqPool.Get().(*request)
	req.done, req.start, req.err = done, start, nil
	for i := range pts {
		p := &pts[i]
		e.keyBuf = proto.AppendSeriesKey(e.keyBuf[:0], p.Endpoint, p.Metric, p.Tags)
		pt := &req.parts[xxhash.Sum64(e.keyBuf)%uint64(len(e.shards))]
		q := *p
		if len(p.Tags) > 0 {
			// Decoded tags are reused by the next Decode: copy them. The
			// slices of earlier points stay valid if the arena grows (the
			// old array is not written again).
			n := len(pt.tags)
			pt.tags = append(pt.tags, p.Tags...)
			q.Tags = pt.tags[n:len(pt.tags):len(pt.tags)]
		}
		pt.points = append(pt.points, q)
	}
	e.dispatch = e.dispatch[:0]
	for i := range req.parts {
		if len(req.parts[i].points) > 0 {
			e.dispatch = append(e.dispatch, i)
		}
	}
	if len(e.dispatch) == 0 {
		e.m.RequestsOK.Inc()
		req.release()
		done(nil)
		return
	}
	e.inflight.Add(1)
	req.pending.Store(int32(len(e.dispatch)))
	// Once the last part is sent a worker may finish and recycle req: only
	// the dispatch list is read from here on.
	for _, i := range e.dispatch {
		e.shards[i].ch <- &req.parts[i]
	}
}

// Process judges points synchronously in the caller's goroutine (tests,
// benchmarks, tools). It returns the first error; points before it are
// committed, the failed one and the rest are not.
func (e *Engine) Process(ctx context.Context, pts []proto.Point) error {
	rs := e.rules.Get()
	now := time.Now().UnixNano()
	for i := range pts {
		p := &pts[i]
		s := e.shardOf(p)
		s.mu.Lock()
		err := s.processPoint(ctx, p, rs, now)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) shardOf(p *proto.Point) *shard {
	// Only used by Process: a stack buffer keeps it allocation free for
	// ordinary keys.
	var buf [256]byte
	k := proto.AppendSeriesKey(buf[:0], p.Endpoint, p.Metric, p.Tags)
	return e.shards[xxhash.Sum64(k)%uint64(len(e.shards))]
}

// History returns the window of a series newest first, false when unknown.
func (e *Engine) History(key string) ([]window.Point, bool) {
	s := e.shards[xxhash.Sum64String(key)%uint64(len(e.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.series[key]
	if !ok {
		return nil, false
	}
	return se.ring.AppendTo(make([]window.Point, 0, se.ring.Len())), true
}

// SeriesCount returns the number of series held.
func (e *Engine) SeriesCount() int64 { return e.series.Load() }

// Sweep drops series that received no point since now-IdleEvict and
// returns how many.
func (e *Engine) Sweep(now time.Time) int {
	cut := now.Add(-e.cfg.IdleEvict).UnixNano()
	total := 0
	for _, s := range e.shards {
		s.mu.Lock()
		for k, se := range s.series {
			if se.lastSeen < cut {
				delete(s.series, k)
				total++
			}
		}
		s.mu.Unlock()
	}
	if total > 0 {
		e.series.Add(int64(-total))
		e.m.Series.Sub(float64(total))
		e.m.Evictions.Add(float64(total))
		e.log.Info("evicted idle series", "count", total, "idle", e.cfg.IdleEvict)
	}
	return total
}

type request struct {
	e       *Engine
	parts   []part
	pending atomic.Int32
	mu      sync.Mutex
	err     error
	done    func(error)
	start   time.Time
}

type part struct {
	req    *request
	points []proto.Point
	tags   []proto.Tag
}

func (r *request) finish(err error) {
	if err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	if r.pending.Add(-1) != 0 {
		return
	}
	e := r.e
	done, rerr := r.done, r.err
	e.m.RequestDuration.Observe(time.Since(r.start).Seconds())
	if rerr != nil {
		e.m.RequestsError.Inc()
	} else {
		e.m.RequestsOK.Inc()
	}
	r.release()
	done(rerr)
	e.inflight.Done()
}

func (r *request) release() {
	for i := range r.parts {
		p := &r.parts[i]
		clear(p.points) // drop string references
		p.points = p.points[:0]
		clear(p.tags)
		p.tags = p.tags[:0]
	}
	r.done, r.err = nil, nil
	r.e.reqPool.Put(r)
}

// series is one series' window and its cached alarm states.
type series struct {
	key      string
	ring     window.Ring
	typ      proto.CounterType
	lastSeen int64 // wall clock, unix ns
	slots    []slot
}

// slot caches the alarm state of one rule on one series.
type slot struct {
	kind   rules.RuleKind
	ruleID int
	id     string // event id
	loaded bool
	st     alarm.State
}

type shard struct {
	e      *Engine
	mu     sync.Mutex
	series map[string]*series
	ch     chan *part
	keyBuf []byte
	vals   []float64
	ts     []int64
}

func (s *shard) run() {
	for pt := range s.ch {
		pt.req.finish(s.processPart(pt))
	}
}

func (s *shard) processPart(pt *part) error {
	rs := s.e.rules.Get()
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range pt.points {
		if err := s.processPoint(s.e.ctx, &pt.points[i], rs, now); err != nil {
			return err
		}
	}
	return nil
}

// processPoint stages p, evaluates the rules and commits p only when every
// alarm write succeeded. s.mu is held.
func (s *shard) processPoint(ctx context.Context, p *proto.Point, rs *rules.Set, now int64) error {
	e := s.e
	s.keyBuf = proto.AppendSeriesKey(s.keyBuf[:0], p.Endpoint, p.Metric, p.Tags)
	se := s.series[string(s.keyBuf)]
	if se == nil {
		se = &series{key: string(s.keyBuf), typ: p.Type}
		se.ring.Init(make([]window.Point, e.cfg.WindowSize+1))
		s.series[se.key] = se
		e.series.Add(1)
		e.m.Series.Inc()
	}
	se.lastSeen = now
	if !se.ring.Accepts(p.Timestamp) {
		e.m.IgnoredNotNewer.Inc()
		return nil
	}
	undo := se.ring.Push(window.Point{TS: p.Timestamp, Value: p.Value})
	oldType := se.typ
	se.typ = p.Type
	if rl := rs.ForMetric(p.Metric); len(rl) > 0 {
		if err := s.evaluate(ctx, se, p, rl); err != nil {
			se.ring.Rollback(undo)
			se.typ = oldType
			return err
		}
	}
	return nil
}

func (s *shard) evaluate(ctx context.Context, se *series, p *proto.Point, rl []*rules.Rule) error {
	e := s.e
	n := -1
	for _, r := range rl {
		if !r.Matches(p.Endpoint, p.Tags) {
			continue
		}
		if n < 0 {
			if se.typ.IsRate() {
				n = se.ring.Rates(s.vals, s.ts)
			} else {
				n = se.ring.Values(s.vals, s.ts)
			}
			e.m.PointsEvaluated.Inc()
		}
		e.m.RuleEvals.Inc()
		res, ok := r.Fn.Eval(s.vals[:n])
		if !ok {
			continue
		}
		// The oldest raw point the function used: its Used-th value, or
		// for a rate series the older point of its Used-th rate (rates
		// are stamped with the newer point of their pair).
		oldest := s.ts[res.Used-1]
		if se.typ.IsRate() {
			oldest = se.ring.At(res.Used).TS
		}
		if err := s.judge(ctx, se, p, r, res, oldest); err != nil {
			return err
		}
	}
	return nil
}

// judge runs the state machine of one rule on one series and writes the
// transition, re-deciding when another writer changed the state.
func (s *shard) judge(ctx context.Context, se *series, p *proto.Point, r *rules.Rule, res rules.Result, oldest int64) error {
	e := s.e
	sl, err := s.slot(ctx, se, r)
	if err != nil {
		return err
	}
	in := alarm.Input{Triggered: res.Triggered, MaxStep: r.MaxStep, OldestTS: oldest, PointTS: p.Timestamp, MinInterval: e.cfg.MinInterval}
	for attempt := 0; ; attempt++ {
		next, fire := alarm.Decide(sl.st, in)
		if !fire {
			return nil
		}
		if attempt == maxCASAttempts {
			return fmt.Errorf("alarm %s: state kept changing under %d attempts", sl.id, maxCASAttempts)
		}
		ev := proto.Event{ID: sl.id, Status: next.Status.String(), Endpoint: p.Endpoint, LeftValue: finite(res.Left),
			CurrentStep: next.CurrentStep, EventTime: next.EventTime, PushedTags: proto.TagsMap(p.Tags)}
		if r.Kind == rules.Strategy {
			ev.Strategy = r.Strategy
		} else {
			ev.Expression = r.Expression
		}
		body, err := proto.MarshalEvent(&ev)
		if err != nil {
			return fmt.Errorf("cannot encode event %s: %w", sl.id, err)
		}
		wctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		ok, stored, err := e.store.Write(wctx, &alarm.Transition{ID: sl.id, From: sl.st, To: next, Priority: r.Priority, Endpoint: p.Endpoint, Event: body})
		cancel()
		if err != nil {
			// The write may or may not have happened: reload next time.
			sl.loaded = false
			e.m.RedisErrors.Inc()
			return err
		}
		if ok {
			sl.st = next
			if next.Status == alarm.Problem {
				e.m.AlarmsProblem.Inc()
			} else {
				e.m.AlarmsOK.Inc()
			}
			e.log.Debug("alarm", "id", sl.id, "status", ev.Status, "step", next.CurrentStep, "eventTime", next.EventTime, "left", ev.LeftValue)
			return nil
		}
		e.m.CASConflicts.Inc()
		sl.st = stored
	}
}

// slot returns the cached state of rule r on se, loading it from Redis the
// first time.
func (s *shard) slot(ctx context.Context, se *series, r *rules.Rule) (*slot, error) {
	e := s.e
	var sl *slot
	for i := range se.slots {
		if se.slots[i].kind == r.Kind && se.slots[i].ruleID == r.ID {
			sl = &se.slots[i]
			break
		}
	}
	if sl == nil {
		id := proto.ExpressionEventID(r.ID, se.key)
		if r.Kind == rules.Strategy {
			id = proto.StrategyEventID(r.ID, se.key)
		}
		se.slots = append(se.slots, slot{kind: r.Kind, ruleID: r.ID, id: id})
		sl = &se.slots[len(se.slots)-1]
	}
	if !sl.loaded {
		lctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		st, err := e.store.Load(lctx, sl.id)
		cancel()
		if err != nil {
			e.m.RedisErrors.Inc()
			return nil, err
		}
		e.m.StateLoads.Inc()
		sl.st, sl.loaded = st, true
	}
	return sl, nil
}

func finite(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}

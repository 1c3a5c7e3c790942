package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/kestrel-mon/kestrel/judge/internal/alarm"
	"github.com/kestrel-mon/kestrel/judge/internal/owner"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/window"
	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/proto"
)

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
	m      *Metrics
	log    *slog.Logger
	shards []*shard

	subMu    sync.Mutex
	closed   bool // under subMu: Submit refuses work
	dec      proto.Decoder
	keyBuf   []byte
	dispatch []int // shard indexes of the current request (under subMu)
	reqPool  sync.Pool

	own *owner.Tracker // nil: every series is served (tests, tools)
	rl  *ratelog.Limiter

	series   atomic.Int64
	inflight sync.WaitGroup
	workers  sync.WaitGroup
	stopOnce sync.Once
	started  atomic.Bool

	ctx context.Context
}

// New builds an engine. Start launches its workers.
func New(cfg Config, rh *rules.Holder, store *alarm.Store, m *Metrics, log *slog.Logger) *Engine {
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
	e := &Engine{cfg: cfg, rules: rh, store: store, m: m, log: log, ctx: context.Background(), rl: ratelog.New(10 * time.Second)}
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
	m.registerQueueDepth(func() float64 {
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
// empty batch), after every point is processed: nil when every point was
// judged, else the error whose text is the reply — MOVED or POINTS (see
// proto.PointFailures) naming the points not judged, or for the whole
// request (stopping, undecodable) a plain error. Submit blocks while the
// worker queues are full. Submit calls are serialised.
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
	req.done, req.start = done, start
	tab, nowNS := e.ownTable(), start.UnixNano()
	for i := range pts {
		p := &pts[i]
		e.keyBuf = proto.AppendSeriesKey(e.keyBuf[:0], p.Endpoint, p.Metric, p.Tags)
		h := xxhash.Sum64(e.keyBuf)
		if tab != nil && !tab.Serves(tab.Partition(h), nowNS) {
			req.refuse(i)
			continue
		}
		pt := &req.parts[h%uint64(len(e.shards))]
		pt.hashes = append(pt.hashes, h)
		pt.idx = append(pt.idx, int32(i))
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
		err := req.replyErr()
		if err != nil {
			e.m.RequestsError.Inc()
		} else {
			e.m.RequestsOK.Inc()
		}
		req.release()
		done(err)
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
	tab := e.ownTable()
	for i := range pts {
		p := &pts[i]
		// A stack buffer keeps this allocation free for ordinary keys.
		var buf [256]byte
		h := xxhash.Sum64(proto.AppendSeriesKey(buf[:0], p.Endpoint, p.Metric, p.Tags))
		if tab != nil && !tab.Serves(tab.Partition(h), now) {
			return errMovedAll
		}
		s := e.shards[h%uint64(len(e.shards))]
		s.mu.Lock()
		se := s.lookup(p, h, tab, now)
		s.want(se, p, rs)
		err := s.flushLoads(ctx)
		if err == nil {
			err = s.processPoint(ctx, se, p, rs)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
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
	return se.win.AppendTo(make([]window.Point, 0, se.win.Len())), true
}

// SeriesCount returns the number of series held.
func (e *Engine) SeriesCount() int64 { return e.series.Load() }

// Sweep drops series that received no point since now-IdleEvict and
// returns how many.
func (e *Engine) Sweep(now time.Time) int {
	cut := now.Add(-e.cfg.IdleEvict).UnixNano()
	tab := e.ownTable()
	total, pruned := 0, 0
	for _, s := range e.shards {
		s.mu.Lock()
		for k, se := range s.series {
			switch {
			case tab != nil && !tab.Owns(tab.Partition(se.hash)):
				// Moved away: its window and states would be dropped on
				// return anyway.
				delete(s.series, k)
				pruned++
			case se.lastSeen < cut:
				delete(s.series, k)
				total++
			}
		}
		s.mu.Unlock()
	}
	if pruned > 0 {
		e.series.Add(int64(-pruned))
		e.m.Series.Sub(float64(pruned))
		e.m.SeriesPruned.Add(float64(pruned))
		e.log.Info("dropped series no longer owned", "count", pruned)
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
	done    func(error)
	start   time.Time

	// Points not judged, as bitmaps over the request's points (see
	// proto.PointFailures), and the first failure's text (a permanent
	// one's when there is one); under mu once the parts are dispatched.
	mu                     sync.Mutex
	refused, retry, failed []byte
	reason                 string
	reasonPermanent        bool
}

type part struct {
	req    *request
	points []proto.Point
	idx    []int32   // each point's index in the request
	hashes []uint64  // xxhash64 of each point's series key
	series []*series // filled by prepare (nil: not served, reported moved)
	tags   []proto.Tag
}

// finish is called by a worker when it is done with one of the request's
// parts; the last one answers the request.
func (r *request) finish() {
	if r.pending.Add(-1) != 0 {
		return
	}
	e := r.e
	done, rerr := r.done, r.replyErr()
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
		p.hashes = p.hashes[:0]
		p.idx = p.idx[:0]
		clear(p.series)
		p.series = p.series[:0]
	}
	clear(r.refused)
	clear(r.retry)
	clear(r.failed)
	r.refused, r.retry, r.failed = r.refused[:0], r.retry[:0], r.failed[:0]
	r.reason, r.reasonPermanent = "", false
	r.done = nil
	r.e.reqPool.Put(r)
}

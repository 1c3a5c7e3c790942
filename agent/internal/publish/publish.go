// Package publish sends the agent's point batches to JetStream and keeps
// every batch that was not acknowledged in a bounded in-memory retry queue.
//
// One sender goroutine owns the head of a FIFO queue: it publishes the
// oldest batch, waits for its PubAck, and only then moves on, so batches
// reach the stream in the order they were queued. A batch that fails
// (timeout, no responders, disconnected, stream full) stays at the head and
// is retried with exponential backoff under its original Nats-Msg-Id, so
// JetStream de-duplicates a re-publish after a lost ack. New batches queue
// behind it. The queue is bounded by batches and bytes: collected batches
// evict the oldest queued batch when it is full; pushed batches are refused
// instead (the HTTP client retries).
package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by Push.
var (
	ErrQueueFull = errors.New("retry queue is full")
	ErrClosed    = errors.New("agent is shutting down")
	ErrDropped   = errors.New("batch was dropped before it was acknowledged or queued")
)

var errDisconnected = errors.New("nats is not connected")

// DefaultMaxPayload is used to split batches before the agent has ever
// connected to a server (the NATS default max_payload).
const DefaultMaxPayload = 1 << 20

// Headroom is kept below the max payload for the message headers.
const Headroom = 1024

// Config of a Publisher.
type Config struct {
	Subject        string        // subjects.Ingest(hostname)
	MsgIDPrefix    string        // unique per agent incarnation, e.g. NewMsgIDPrefix(hostname)
	Timeout        time.Duration // wait for one PubAck
	MaxPayload     int           // 0: the server's
	MaxBatches     int
	MaxBytes       int64
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// NATSOptions are the connection options the publisher relies on: no
// reconnect buffer, so a publish while disconnected fails at once and the
// batch goes to the retry queue under its Msg-Id instead of waiting in a
// hidden buffer.
func NATSOptions() []nats.Option { return []nats.Option{nats.ReconnectBufSize(-1)} }

// NewMsgIDPrefix returns hostname + "-" + a random incarnation id.
func NewMsgIDPrefix(hostname string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return proto.SubjectToken(hostname) + "-" + hex.EncodeToString(b[:])
}

type batch struct {
	id       string
	data     []byte
	points   int
	attempts int
	inflight bool
	resolved bool    // the waiter has been told about this batch
	w        *waiter // nil for collected batches
}

type waiter struct {
	remaining int
	dropped   bool
	done      chan struct{}
}

// Publisher publishes batches in order through a bounded retry queue.
type Publisher struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	m   *Metrics
	rl  *ratelog.Limiter

	mu      sync.Mutex
	q       []*batch
	qBytes  int64
	seq     uint64
	failing bool // the head's last attempt failed: the queue is retrying
	closing bool

	wake   chan struct{}
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// New creates a publisher and starts its sender. Stop it with Stop.
func New(cfg Config, nc *nats.Conn, m *Metrics, log *slog.Logger) (*Publisher, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cannot create jetstream context: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		cfg:    cfg,
		nc:     nc,
		js:     js,
		log:    log,
		m:      m,
		rl:     ratelog.New(10 * time.Second),
		wake:   make(chan struct{}, 1),
		kick:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go p.run(ctx)
	return p, nil
}

// Kick makes a waiting retry happen now (call it when NATS reconnects).
func (p *Publisher) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// MaxPayload returns the batch size limit used when splitting: the
// server's max payload (or the configured one when smaller) minus Headroom.
func (p *Publisher) MaxPayload() int {
	mp := int(p.nc.MaxPayload())
	if mp <= 0 {
		mp = DefaultMaxPayload
	}
	if p.cfg.MaxPayload > 0 && p.cfg.MaxPayload < mp {
		mp = p.cfg.MaxPayload
	}
	return mp - Headroom
}

// Depth returns the queued batches and bytes.
func (p *Publisher) Depth() (batches int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q), p.qBytes
}

func (p *Publisher) split(points []proto.Point) ([]*batch, error) {
	datas, err := proto.SplitBatches(points, p.MaxPayload())
	if err != nil {
		return nil, err
	}
	out := make([]*batch, len(datas))
	for i, d := range datas {
		out[i] = &batch{data: d, points: batchCount(d)}
	}
	return out, nil
}

// batchCount returns the point count of a batch this agent encoded (0 for
// anything unreadable, which cannot happen for our own batches).
func batchCount(b []byte) int {
	n, err := proto.BatchLen(b)
	if err != nil {
		return 0
	}
	return n
}

// Enqueue queues collected points (one step) for publishing. When the
// queue is full the oldest queued batches are dropped and counted.
func (p *Publisher) Enqueue(points []proto.Point) {
	if len(points) == 0 {
		return
	}
	bs, err := p.split(points)
	if err != nil {
		p.m.DroppedBatches.WithLabelValues(DropTooLarge).Inc()
		p.m.DroppedPoints.WithLabelValues(DropTooLarge).Add(float64(len(points)))
		p.logDrop(DropTooLarge, 1, len(points), err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		for _, b := range bs {
			p.dropLocked(b, DropShutdown)
		}
		return
	}
	var size int64
	for _, b := range bs {
		size += int64(len(b.data))
	}
	// Evict the oldest batches not in flight until the new ones fit.
	for !p.fitsLocked(len(bs), size) {
		i := 0
		for i < len(p.q) && p.q[i].inflight {
			i++
		}
		if i == len(p.q) {
			break
		}
		old := p.q[i]
		p.removeLocked(i)
		p.dropLocked(old, DropQueueFull)
	}
	for _, b := range bs {
		if !p.fitsLocked(1, int64(len(b.data))) {
			p.dropLocked(b, DropQueueFull)
			continue
		}
		p.appendLocked(b)
	}
	p.signal()
}

// Push publishes pushed points and returns once every batch is
// acknowledged by JetStream or safely in the retry queue. It never evicts
// older data: ErrQueueFull when the queue cannot take the batches.
func (p *Publisher) Push(ctx context.Context, points []proto.Point) error {
	bs, err := p.split(points)
	if err != nil {
		return err
	}
	w := &waiter{remaining: len(bs), done: make(chan struct{})}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrClosed
	}
	var size int64
	for _, b := range bs {
		size += int64(len(b.data))
	}
	if !p.fitsLocked(len(bs), size) {
		n, by := len(p.q), p.qBytes
		p.mu.Unlock()
		return fmt.Errorf("%w (%d/%d batches, %d/%d bytes queued, %d batches of %d bytes would not fit)",
			ErrQueueFull, n, p.cfg.MaxBatches, by, p.cfg.MaxBytes, len(bs), size)
	}
	for _, b := range bs {
		b.w = w
		p.appendLocked(b)
		if p.failing {
			// Older batches are already waiting for a retry: this one
			// is safely queued behind them.
			p.resolveLocked(b, false)
		}
	}
	p.signal()
	p.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	dropped := w.dropped
	p.mu.Unlock()
	if dropped {
		return ErrDropped
	}
	return nil
}

func (p *Publisher) fitsLocked(n int, size int64) bool {
	return len(p.q)+n <= p.cfg.MaxBatches && p.qBytes+size <= p.cfg.MaxBytes
}

func (p *Publisher) appendLocked(b *batch) {
	p.seq++
	if b.id == "" {
		b.id = p.cfg.MsgIDPrefix + "-" + strconv.FormatUint(p.seq, 10)
	}
	p.q = append(p.q, b)
	p.qBytes += int64(len(b.data))
	p.gaugeLocked()
}

func (p *Publisher) removeLocked(i int) {
	b := p.q[i]
	copy(p.q[i:], p.q[i+1:])
	p.q[len(p.q)-1] = nil
	p.q = p.q[:len(p.q)-1]
	p.qBytes -= int64(len(b.data))
	if len(p.q) == 0 {
		p.failing = false
	}
	p.gaugeLocked()
}

func (p *Publisher) gaugeLocked() {
	p.m.QueueBatches.Set(float64(len(p.q)))
	p.m.QueueBytes.Set(float64(p.qBytes))
}

// resolveLocked tells a batch's waiter (if any) that the batch is acked or
// queued (dropped=false) or lost (dropped=true).
func (p *Publisher) resolveLocked(b *batch, dropped bool) {
	if b.w == nil || b.resolved {
		return
	}
	b.resolved = true
	if dropped {
		b.w.dropped = true
	}
	b.w.remaining--
	if b.w.remaining == 0 {
		close(b.w.done)
	}
}

func (p *Publisher) dropLocked(b *batch, reason string) {
	p.m.DroppedBatches.WithLabelValues(reason).Inc()
	p.m.DroppedPoints.WithLabelValues(reason).Add(float64(b.points))
	p.resolveLocked(b, true)
	p.logDrop(reason, 1, b.points, nil)
}

func (p *Publisher) logDrop(reason string, batches, points int, err error) {
	if ok, suppressed := p.rl.Allow("drop:" + reason); ok {
		args := []any{"reason", reason, "batches", batches, "points", points, "suppressed", suppressed}
		if err != nil {
			args = append(args, "err", err)
		}
		p.log.Warn("batch dropped", args...)
	}
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stop stops taking batches, keeps publishing the queue until it is empty
// or ctx is done, then drops (and counts) whatever is left. It returns the
// number of batches and points dropped.
func (p *Publisher) Stop(ctx context.Context) (batches, points int) {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.signal()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
	}
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.q) > 0 {
		b := p.q[0]
		p.removeLocked(0)
		p.m.DroppedBatches.WithLabelValues(DropShutdown).Inc()
		p.m.DroppedPoints.WithLabelValues(DropShutdown).Add(float64(b.points))
		p.resolveLocked(b, true)
		batches++
		points += b.points
	}
	return batches, points
}

package stream

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the stream and consumer metrics.
type Metrics struct {
	// Ready is 1 while the stream exists with its ingest subjects open
	// and the consumer exists.
	Ready prometheus.Gauge
	// ConsumerRecreated counts consumers this transfer recreated after
	// finding them deleted (ingest subjects open, no consumer).
	ConsumerRecreated prometheus.Counter
	// ConfigMismatch is 1 per object ("stream", "consumer") while this
	// transfer's config differs from the existing settings (which win).
	ConfigMismatch *prometheus.GaugeVec
}

// Objects of ConfigMismatch.
const (
	ObjectStream   = "stream"
	ObjectConsumer = "consumer"
)

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_stream_ready",
			Help: "1 while the ingest stream exists with its ingest subjects open and the durable consumer exists."}),
		ConsumerRecreated: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_consumer_recreated_total",
			Help: "Times this transfer found the durable consumer deleted (ingest subjects open, no consumer: published batches lost until then), closed the subjects and recreated it."}),
		ConfigMismatch: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_transfer_stream_config_mismatch",
			Help: "1 while this transfer's stream.* or consumer.* settings differ from the existing stream's or consumer's, which are used (kestrel-transfer stream apply changes them)."}, []string{"object"}),
	}
	m.ConfigMismatch.WithLabelValues(ObjectStream)
	m.ConfigMismatch.WithLabelValues(ObjectConsumer)
	reg.MustRegister(m.Ready, m.ConsumerRecreated, m.ConfigMismatch)
	return m
}

// Keeper makes the stream and the consumer ready and keeps them so: every
// Interval it checks them, and recreates a deleted consumer (closing the
// ingest subjects first, see the package doc) or stream. It is safe for
// concurrent use.
type Keeper struct {
	// Interval is the pause between two checks once ready (default 1s,
	// ±20%): a deleted consumer is noticed within about 1.2 × Interval,
	// or a quarter of it after the server's deletion advisory.
	Interval time.Duration
	// Timeout bounds one check (default 5s).
	Timeout time.Duration

	js    jetstream.JetStream
	subj  proto.Subjects
	want  jetstream.StreamConfig
	wantC jetstream.ConsumerConfig
	met   *Metrics
	log   *slog.Logger
	rl    *ratelog.Limiter
	// advisories: also check at once on the server's advisory that the
	// consumer or the stream was deleted (tests turn it off to check the
	// polling alone).
	advisories bool

	mu       sync.Mutex
	reason   string
	cons     jetstream.Consumer
	ready    chan struct{}
	mismatch [2]string // last logged differences, stream and consumer
}

// NewKeeper returns a Keeper for the stream and consumer of sc and cc; it
// is not ready until Run made them so.
func NewKeeper(js jetstream.JetStream, subj proto.Subjects, sc config.Stream, cc config.Consumer, met *Metrics, log *slog.Logger) *Keeper {
	return &Keeper{
		Interval: time.Second, Timeout: 5 * time.Second,
		js: js, subj: subj, want: StreamConfig(subj, sc), wantC: ConsumerConfig(cc), met: met, log: log,
		rl: ratelog.New(10 * time.Second), advisories: true,
		reason: "stream " + subj.Stream() + " and consumer " + proto.ConsumerTransfer + " not checked yet",
		ready:  make(chan struct{}),
	}
}

// NotReady returns why the stream and consumer are not ready, or "".
func (k *Keeper) NotReady() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reason
}

// Ready returns a channel closed once the stream and consumer were first
// ready.
func (k *Keeper) Ready() <-chan struct{} { return k.ready }

// Consumer returns the consumer, nil before Ready.
func (k *Keeper) Consumer() jetstream.Consumer {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cons
}

// Run checks and repairs until ctx ends; it returns nil then. It checks
// every Interval (±20%, so transfers started together do not check in
// step), and within a random quarter Interval when the server advises
// that the consumer or the stream was deleted (if this connection may
// subscribe to $JS.EVENT.ADVISORY.>; else polling alone notices it).
// Failed checks (NATS unreachable, timeouts) are retried with backoff and
// leave the readiness as it was, unless a check found something missing.
func (k *Keeper) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	if k.advisories {
		poke := func(*nats.Msg) {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		for _, s := range []string{
			"$JS.EVENT.ADVISORY.CONSUMER.DELETED." + k.want.Name + "." + k.wantC.Durable,
			"$JS.EVENT.ADVISORY.STREAM.DELETED." + k.want.Name,
		} {
			sub, err := k.js.Conn().Subscribe(s, poke)
			if err != nil {
				k.log.Info("cannot subscribe to deletion advisories: noticing deletions by polling alone", "subject", s, "err", err, "interval", k.Interval)
				continue
			}
			defer func() { _ = sub.Unsubscribe() }()
		}
	}
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		wait := k.Interval
		if err := k.check(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if k.Consumer() == nil {
				k.setReason(err.Error())
			}
			if ok, n := k.rl.Allow("check"); ok {
				k.log.Warn("stream check failed, retrying", "err", err, "in", backoff, "suppressed", n)
			}
			wait = backoff
			backoff = min(backoff*2, 5*time.Second)
		} else {
			backoff = 250 * time.Millisecond
			wait = spread(k.Interval, 0.8, 1.2)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-wake:
			// Every transfer gets the advisory at once: spread their
			// checks, so the first one repairs and the others find it done
			// (instead of closing the subjects again after it reopened).
			t.Reset(spread(k.Interval, 0, 0.25))
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
		t.Stop()
	}
	return nil
}

// spread returns a random duration between lo×d and hi×d.
func spread(d time.Duration, lo, hi float64) time.Duration {
	return time.Duration(float64(d) * (lo + (hi-lo)*rand.Float64()))
}

// check runs one ensure round and records the result.
func (k *Keeper) check(ctx context.Context) error {
	c, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	st, err := ensureOnce(c, k.js, k.subj, k.want, k.wantC, k.notReady)
	if err != nil {
		return err
	}
	if st.CreatedStream {
		k.log.Info("stream created", "stream", k.want.Name, "replicas", st.StreamConfig.Replicas)
	}
	if st.Recreated {
		k.met.ConsumerRecreated.Inc()
		k.log.Error("consumer was deleted: closed the ingest subjects and recreated it; batches published between the deletion and now are lost",
			"stream", k.want.Name, "consumer", k.wantC.Durable)
	}
	if st.Opened {
		k.log.Info("ingest subjects open", "stream", k.want.Name, "subjects", k.subj.IngestAll())
	}
	k.compare(ObjectStream, 0, StreamDifferences(st.StreamConfig, k.want))
	k.compare(ObjectConsumer, 1, ConsumerDifferences(st.ConsumerConfig, k.wantC))
	k.mu.Lock()
	first := k.cons == nil
	k.cons = st.Consumer
	k.mu.Unlock()
	k.setReason("")
	if first {
		close(k.ready)
	}
	return nil
}

// notReady records a problem found by a round, before it is repaired.
func (k *Keeper) notReady(why string) {
	k.log.Info("stream not ready", "reason", why)
	k.setReason(why)
}

func (k *Keeper) setReason(why string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reason = why
	if why == "" {
		k.met.Ready.Set(1)
	} else {
		k.met.Ready.Set(0)
	}
}

// compare sets the mismatch gauge of object and logs the differences when
// they changed: the existing settings are used.
func (k *Keeper) compare(object string, i int, diffs []string) {
	s := strings.Join(diffs, ", ")
	v := 0.0
	if s != "" {
		v = 1
	}
	k.met.ConfigMismatch.WithLabelValues(object).Set(v)
	k.mu.Lock()
	changed := s != k.mismatch[i]
	k.mismatch[i] = s
	k.mu.Unlock()
	if !changed {
		return
	}
	if s == "" {
		k.log.Info("config matches the existing "+object, "stream", k.want.Name)
		return
	}
	k.log.Warn("config differs from the existing "+object+": using the existing settings (kestrel-transfer stream apply changes them)",
		"stream", k.want.Name, "differences", s)
}

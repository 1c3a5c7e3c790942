package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Metric is the metric name of every generated point.
const Metric = "loadgen.value"

// Step of every generated point (>= the transfer's default min_step, so
// the transfer neither raises it nor re-aligns timestamps).
const Step = 30

// Config is what to generate and where.
type Config struct {
	NATSURL         string
	Prefix          string
	Agents          int           // simulated agents (endpoints loadgen-<i>)
	Series          int           // series per agent
	Rate            float64       // points per second, all agents together
	Duration        time.Duration // how long to publish
	Batch           int           // points per published batch
	Drain           time.Duration // longest wait for outstanding acknowledgements after publishing
	DrainIdle       time.Duration // stop draining after this long without a new acknowledgement
	Warmup          time.Duration // longest wait for the probe point's acknowledgement
	TransferMetrics []string      // /metrics URLs of the transfers
	JudgeMetrics    []string      // /metrics URLs of the judges
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if c.Agents < 1 {
		errs = append(errs, errors.New("-agents must be at least 1"))
	}
	if c.Series < 1 {
		errs = append(errs, errors.New("-series must be at least 1"))
	}
	if c.Rate <= 0 {
		errs = append(errs, errors.New("-rate must be positive"))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if c.Batch < 1 {
		errs = append(errs, errors.New("-batch must be at least 1"))
	}
	if c.Drain < 0 || c.DrainIdle <= 0 || c.Warmup <= 0 {
		errs = append(errs, errors.New("-drain must not be negative, -drain-idle and -warmup must be positive"))
	}
	if _, err := proto.NewSubjects(c.Prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Result is what a run measured.
type Result struct {
	Config        Config
	Stats         Stats
	Observer      ObserverStats
	PublishErrors int64
	PublishWall   time.Duration // first to last publish
	TransferCPU   float64       // seconds used during the run (NaN when not scraped)
	JudgeCPU      float64
	CPUErr        error
}

// PublishedRate is the achieved publish rate.
func (r *Result) PublishedRate() float64 { return perSecond(r.Stats.Issued, r.PublishWall) }

// SustainedRate is distinct points acknowledged by judges per second,
// from the first publish to the last acknowledgement.
func (r *Result) SustainedRate() float64 {
	return perSecond(r.Stats.Acked, r.Stats.LastAck-r.Stats.FirstPub)
}

// InWindowRate is points acknowledged while publishing, per second of it.
func (r *Result) InWindowRate() float64 { return perSecond(r.Stats.AckedInWindow, r.PublishWall) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// CPUPerMillion returns CPU seconds per million acknowledged points.
func (r *Result) CPUPerMillion(cpu float64) float64 {
	if r.Stats.Acked == 0 {
		return 0
	}
	return cpu / (float64(r.Stats.Acked) / 1e6)
}

// Run publishes the load against a running pipeline and measures it.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	subj, _ := proto.NewSubjects(cfg.Prefix)
	total := int(cfg.Rate*cfg.Duration.Seconds()) + cfg.Agents*cfg.Batch + 1
	tr := NewTracker(total + 1) // +1: the probe

	// Two connections: one observes (its own socket, so the publishers'
	// traffic never delays it), one publishes with a private inbox prefix
	// so its PubAcks are not mistaken for judge replies.
	obsNC, err := nats.Connect(cfg.NATSURL, nats.Name("kestrel-loadgen observer"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", cfg.NATSURL, err)
	}
	defer obsNC.Close()
	pubNC, err := nats.Connect(cfg.NATSURL, nats.Name("kestrel-loadgen"), nats.MaxReconnects(-1), nats.CustomInboxPrefix("_LOADGEN_INBOX"))
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", cfg.NATSURL, err)
	}
	defer pubNC.Close()
	js, err := jetstream.New(pubNC)
	if err != nil {
		return nil, err
	}
	if _, err := js.Stream(ctx, subj.Stream()); err != nil {
		return nil, fmt.Errorf("ingest stream %s: %w (is a transfer running? it creates the stream)", subj.Stream(), err)
	}

	isOurs := func(p *proto.Point) (uint64, bool) {
		if p.Metric != Metric || !strings.HasPrefix(p.Endpoint, "loadgen-") {
			return 0, false
		}
		return uint64(p.Value), true
	}
	obs, err := NewObserver(obsNC, subj, tr, isOurs)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	stopObs := sync.OnceValue(obs.Stop)
	defer stopObs()

	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	rounds := int(cfg.Rate*cfg.Duration.Seconds())/(cfg.Agents*cfg.Series) + 2
	now := time.Now().Unix()
	baseTS := proto.AlignTimestamp(now, Step) - int64(rounds+10)*Step

	// Probe: one point, to know the pipeline and the observation work.
	if err := probe(ctx, js, subj, tr, runID, baseTS, cfg.Warmup); err != nil {
		return nil, err
	}
	log.Info("probe acknowledged by a judge; pipeline is live")

	cpu0t, errT := ScrapeCPU(ctx, cfg.TransferMetrics)
	cpu0j, errJ := ScrapeCPU(ctx, cfg.JudgeMetrics)

	log.Info("publishing", "agents", cfg.Agents, "series_per_agent", cfg.Series, "rate", cfg.Rate, "duration", cfg.Duration, "batch", cfg.Batch)
	var pubErrs atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	perAgent := cfg.Rate / float64(cfg.Agents)
	interval := time.Duration(float64(cfg.Batch) / perAgent * float64(time.Second))
	for a := range cfg.Agents {
		wg.Go(func() {
			agent(ctx, js, subj, tr, &pubErrs, runID, a, cfg, baseTS, start, interval, log)
		})
	}
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				log.Info("progress", "published", tr.next.Load(), "acked", tr.Acked(), "elapsed", time.Since(start).Round(time.Second))
			}
		}
	}()
	wg.Wait()
	close(progressDone)
	log.Info("publishing done; draining", "published", tr.next.Load(), "acked", tr.Acked())

	// Drain: until everything published is acknowledged, or no progress.
	issued := int64(tr.next.Load())
	deadline := time.Now().Add(cfg.Drain)
	last, lastChange := tr.Acked(), time.Now()
	for tr.Acked()-1+pubErrs.Load() < issued-1 && time.Now().Before(deadline) && time.Since(lastChange) < cfg.DrainIdle && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if a := tr.Acked(); a != last {
			last, lastChange = a, time.Now()
		}
	}
	ostats := stopObs()

	res := &Result{Config: cfg, Observer: ostats, PublishErrors: pubErrs.Load()}
	cpu1t, errT2 := ScrapeCPU(context.Background(), cfg.TransferMetrics)
	cpu1j, errJ2 := ScrapeCPU(context.Background(), cfg.JudgeMetrics)
	res.CPUErr = errors.Join(errT, errJ, errT2, errJ2)
	res.TransferCPU, res.JudgeCPU = cpu1t-cpu0t, cpu1j-cpu0j
	res.Stats = tr.Stats(1) // the probe is not part of the figures
	res.PublishWall = res.Stats.LastPub - res.Stats.FirstPub
	return res, nil
}

func probe(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, tr *Tracker, runID string, ts int64, wait time.Duration) error {
	seq, _ := tr.Reserve(1)
	p := proto.Point{Endpoint: "loadgen-probe", Metric: Metric, Value: float64(seq), Timestamp: ts, Step: Step, Type: proto.Gauge}
	msg := &nats.Msg{Subject: subj.Ingest(p.Endpoint), Data: proto.EncodeBatch([]proto.Point{p}), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "loadgen-"+runID+"-probe")
	tr.MarkSent(seq, 1, tr.Now())
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish probe: %w", err)
	}
	tr.MarkPublished(seq, 1)
	deadline := time.Now().Add(wait)
	for tr.Acked() == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no judge acknowledged the probe point within %s: is a transfer and a judge running on this NATS (subject prefix %q)?", wait, subj.Prefix())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// agent publishes batches of its series round-robin at its share of the
// rate, each point's value its sequence number and its timestamp one
// step later per round over its series.
func agent(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, tr *Tracker, pubErrs *atomic.Int64,
	runID string, a int, cfg Config, baseTS int64, start time.Time, interval time.Duration, log *slog.Logger) {
	endpoint := "loadgen-" + strconv.Itoa(a)
	subject := subj.Ingest(endpoint)
	tags := make([][]proto.Tag, cfg.Series)
	for j := range tags {
		tags[j] = []proto.Tag{{Key: "series", Value: strconv.Itoa(j)}}
	}
	var enc proto.Encoder
	var n int // points this agent has generated
	end := start.Add(cfg.Duration)
	// Stagger agents over one interval so they do not publish in lockstep.
	next := start.Add(time.Duration(int64(interval) * int64(a) / int64(cfg.Agents)))
	var errLogged time.Time
	for batchNo := 0; ; batchNo++ {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if !time.Now().Before(end) || ctx.Err() != nil {
			return
		}
		next = next.Add(interval)
		first, ok := tr.Reserve(cfg.Batch)
		if !ok {
			return
		}
		enc.Reset()
		for k := range cfg.Batch {
			j := n % cfg.Series
			p := proto.Point{Endpoint: endpoint, Metric: Metric, Tags: tags[j], Value: float64(first + uint64(k)),
				Timestamp: baseTS + int64(n/cfg.Series)*Step, Type: proto.Gauge, Step: Step}
			enc.Add(&p)
			n++
		}
		msg := &nats.Msg{Subject: subject, Data: enc.Bytes(), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "loadgen-"+runID+"-"+strconv.Itoa(a)+"-"+strconv.Itoa(batchNo))
		tr.MarkSent(first, cfg.Batch, tr.Now())
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			pubErrs.Add(int64(cfg.Batch))
			if time.Since(errLogged) > 10*time.Second {
				log.Warn("publish failed; batch counted as not published", "agent", a, "err", err)
				errLogged = time.Now()
			}
			continue
		}
		tr.MarkPublished(first, cfg.Batch)
	}
}

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
	DrainIdle       time.Duration // only when the consumer state cannot be read: stop draining after this long without a new acknowledgement
	DrainSettle     time.Duration // after the consumer has nothing pending or un-acked: wait this long for the last replies to reach the observer
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
	if c.Drain < 0 || c.DrainIdle <= 0 || c.Warmup <= 0 || c.DrainSettle < 0 {
		errs = append(errs, errors.New("-drain and -drain-settle must not be negative, -drain-idle and -warmup must be positive"))
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

	// Cross-checks at the end of the drain.
	DrainWait     time.Duration // publishing done to drain end
	DrainReason   string
	Consumer      ConsumerState
	ConsumerErr   error
	Lost          int64   // published, no judge acknowledgement seen, and no longer in the stream
	Held          int64   // published, no judge acknowledgement seen, still in the stream (not acked by a transfer)
	LookupErrors  int64   // unacknowledged points whose stream message could not be looked up
	JudgeReceived float64 // kestrel_judge_points_received_total during the run (retries counted again)
	Transfer      map[string]float64
	ScrapeErr     error
}

// ConsumerState is the ingest stream and its transfer consumer at the end.
type ConsumerState struct {
	NumPending     uint64 // messages not yet delivered to a transfer
	NumAckPending  uint64 // delivered, not yet acknowledged
	NumRedelivered int
	StreamMsgs     uint64 // messages the stream still holds (interest retention: not acked by every consumer)
}

// Settled reports whether every message was acknowledged by the transfers.
func (c ConsumerState) Settled() bool { return c.NumPending == 0 && c.NumAckPending == 0 }

// Transfer metrics scraped at the end of a run.
const (
	MetricTransferInflight = "kestrel_transfer_judge_requests_inflight"
	MetricTransferPending  = "kestrel_transfer_pending_points"
	MetricTransferRetries  = "kestrel_transfer_judge_retries_total"
	MetricTransferHeld     = "kestrel_transfer_messages_held"
	MetricJudgeReceived    = "kestrel_judge_points_received_total"
)

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
	var cc ConnCounters
	obsNC, err := nats.Connect(cfg.NATSURL, append(cc.Options(), nats.Name("kestrel-loadgen observer"), nats.MaxReconnects(-1))...)
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
	stream, err := js.Stream(ctx, subj.Stream())
	if err != nil {
		return nil, fmt.Errorf("ingest stream %s: %w (is a transfer running? it creates the stream)", subj.Stream(), err)
	}

	isOurs := func(p *proto.Point) (uint64, bool) {
		if p.Metric != Metric || !strings.HasPrefix(p.Endpoint, "loadgen-") {
			return 0, false
		}
		return uint64(p.Value), true
	}
	obs, err := NewObserver(obsNC, &cc, subj, tr, isOurs)
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
	recv0, errR := Scrape(ctx, cfg.JudgeMetrics, MetricJudgeReceived)

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

	drainStart := time.Now()
	reason := drain(ctx, cfg, stream, tr, issued(tr, &pubErrs))
	ostats := stopObs()

	res := &Result{Config: cfg, Observer: ostats, PublishErrors: pubErrs.Load(), DrainWait: time.Since(drainStart), DrainReason: reason}
	cpu1t, errT2 := ScrapeCPU(context.Background(), cfg.TransferMetrics)
	cpu1j, errJ2 := ScrapeCPU(context.Background(), cfg.JudgeMetrics)
	res.CPUErr = errors.Join(errT, errJ, errT2, errJ2)
	res.TransferCPU, res.JudgeCPU = cpu1t-cpu0t, cpu1j-cpu0j
	recv1, errR2 := Scrape(context.Background(), cfg.JudgeMetrics, MetricJudgeReceived)
	res.JudgeReceived = recv1[MetricJudgeReceived] - recv0[MetricJudgeReceived]
	var errT3 error
	res.Transfer, errT3 = Scrape(context.Background(), cfg.TransferMetrics,
		MetricTransferInflight, MetricTransferPending, MetricTransferRetries, MetricTransferHeld)
	res.ScrapeErr = errors.Join(errR, errR2, errT3)
	res.Stats = tr.Stats(1) // the probe is not part of the figures
	res.PublishWall = res.Stats.LastPub - res.Stats.FirstPub
	res.Consumer, res.ConsumerErr = consumerState(context.Background(), stream)
	res.classify(context.Background(), stream, tr.UnackedBatches(1))
	return res, nil
}

// issued returns a func reporting whether every point published so far is
// acknowledged by a judge.
func issued(tr *Tracker, pubErrs *atomic.Int64) func() bool {
	n := int64(tr.next.Load())
	return func() bool { return tr.Acked()+pubErrs.Load() >= n }
}

// drain waits until every published point is acknowledged by a judge, or
// the transfer consumer has nothing pending or un-acknowledged (every
// message is acknowledged, so every point's judge replied) and the
// observer had DrainSettle to see the last replies, or Drain passed.
// Without a readable consumer state it falls back to DrainIdle without a
// new acknowledgement. It returns why it stopped.
func drain(ctx context.Context, cfg Config, stream jetstream.Stream, tr *Tracker, allAcked func() bool) string {
	deadline := time.Now().Add(cfg.Drain)
	last, lastChange := tr.Acked(), time.Now()
	var settledAt, lastInfo time.Time
	consumerOK := true
	for {
		if allAcked() {
			return "every point acknowledged by a judge"
		}
		now := time.Now()
		if ctx.Err() != nil {
			return "interrupted"
		}
		if now.After(deadline) {
			return fmt.Sprintf("-drain %s passed", cfg.Drain)
		}
		if a := tr.Acked(); a != last {
			last, lastChange = a, now
		}
		if consumerOK && now.Sub(lastInfo) >= 250*time.Millisecond {
			lastInfo = now
			cs, err := consumerState(ctx, stream)
			switch {
			case err != nil:
				consumerOK = false
			case cs.Settled():
				if settledAt.IsZero() {
					settledAt = now
				}
			default:
				settledAt = time.Time{}
			}
		}
		if !settledAt.IsZero() && now.Sub(settledAt) >= cfg.DrainSettle && now.Sub(lastChange) >= cfg.DrainSettle {
			return fmt.Sprintf("consumer %s has nothing pending or un-acked", proto.ConsumerTransfer)
		}
		if !consumerOK && now.Sub(lastChange) >= cfg.DrainIdle {
			return fmt.Sprintf("consumer state unreadable; no new acknowledgement for -drain-idle %s", cfg.DrainIdle)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func consumerState(ctx context.Context, stream jetstream.Stream) (ConsumerState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := stream.Consumer(ctx, proto.ConsumerTransfer)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("consumer %s: %w", proto.ConsumerTransfer, err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("consumer %s info: %w", proto.ConsumerTransfer, err)
	}
	si, err := stream.Info(ctx)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("stream info: %w", err)
	}
	return ConsumerState{NumPending: ci.NumPending, NumAckPending: uint64(ci.NumAckPending),
		NumRedelivered: ci.NumRedelivered, StreamMsgs: si.State.Msgs}, nil
}

// classify sorts the points no judge acknowledgement was seen for: a
// point whose stream message is still stored was not acknowledged by a
// transfer (held: it will be delivered again); one whose message is gone
// from the (interest-retention) stream was acknowledged or removed
// without any judge acknowledgement seen: lost.
func (r *Result) classify(ctx context.Context, stream jetstream.Stream, unacked []StoredBatch) {
	const maxLookups = 10000
	for i, b := range unacked {
		if i >= maxLookups {
			r.LookupErrors += int64(b.Unacked)
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := stream.GetMsg(lctx, b.StreamSeq)
		cancel()
		switch {
		case err == nil:
			r.Held += int64(b.Unacked)
		case errors.Is(err, jetstream.ErrMsgNotFound):
			r.Lost += int64(b.Unacked)
		default:
			r.LookupErrors += int64(b.Unacked)
		}
	}
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
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			pubErrs.Add(int64(cfg.Batch))
			if time.Since(errLogged) > 10*time.Second {
				log.Warn("publish failed; batch counted as not published", "agent", a, "err", err)
				errLogged = time.Now()
			}
			continue
		}
		tr.MarkPublished(first, cfg.Batch)
		tr.MarkStored(first, cfg.Batch, ack.Sequence)
	}
}

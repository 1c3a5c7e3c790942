package loadgen

import (
	"fmt"
	"io"
	"math"
	"time"
)

// Report writes the figures of a run.
func (r *Result) Report(w io.Writer) {
	c := r.Config
	st := r.Stats
	o := r.Observer
	fmt.Fprintf(w, "kestrel-loadgen: %d agents x %d series, target %.0f points/s for %s, %d points per batch\n",
		c.Agents, c.Series, c.Rate, c.Duration, c.Batch)
	fmt.Fprintf(w, "  published           %d points (%d acknowledged by the stream, %d publish errors) in %s = %.0f points/s\n",
		st.Issued, st.Published, r.PublishErrors, r.PublishWall.Round(time.Millisecond), r.PublishedRate())
	fmt.Fprintf(w, "  acknowledged        %d points by judges; sustained %.0f points/s (first publish to last judge ack, %s); %.0f points/s within the publish window\n",
		st.Acked, r.SustainedRate(), (st.LastAck - st.FirstPub).Round(time.Millisecond), r.InWindowRate())
	fmt.Fprintf(w, "  latency             publish -> judge ack: p50 %s  p90 %s  p99 %s  max %s\n",
		rd(st.P50), rd(st.P90), rd(st.P99), rd(st.Max))
	fmt.Fprintf(w, "  drain               %s after publishing: %s\n", r.DrainWait.Round(time.Millisecond), r.DrainReason)
	fmt.Fprintf(w, "  lost                %d points (published, no judge acknowledgement seen, and no longer in the stream)\n", r.Lost)
	fmt.Fprintf(w, "  held                %d points (published, no judge acknowledgement yet, still in the stream un-acked: redelivered later)\n", r.Held)
	if r.LookupErrors > 0 {
		fmt.Fprintf(w, "  unclassified        %d points (no judge acknowledgement seen; their stream message could not be looked up)\n", r.LookupErrors)
	}
	fmt.Fprintf(w, "  duplicates          %d repeated judge acknowledgements (redelivery or retry after a timeout)\n", st.DupAcks)
	fmt.Fprintf(w, "  judge requests      %d seen, %d +OK, %d -ERR (retried by transfer), %d other replies, %d unanswered, %d undecodable; %d replies seen before their request (matched), %d replies never matched\n",
		o.Requests, o.OKReplies, o.ErrReplies, o.OtherReplies, o.Unanswered, o.Undecodable, o.Reordered, o.EarlyOrphans)
	fmt.Fprintf(w, "  observer            %d messages dropped, %d slow consumer errors, %d disconnects, %d other async errors\n",
		o.Dropped, o.SlowConsumer, o.Disconnects, o.AsyncErrors)
	if r.ConsumerErr != nil {
		fmt.Fprintf(w, "  stream check        not possible: %v\n", r.ConsumerErr)
	} else {
		cs := r.Consumer
		fmt.Fprintf(w, "  stream check        consumer %s: num_pending %d, num_ack_pending %d, redelivered %d; stream holds %d messages\n",
			"transfer", cs.NumPending, cs.NumAckPending, cs.NumRedelivered, cs.StreamMsgs)
	}
	if r.ScrapeErr != nil {
		fmt.Fprintf(w, "  metrics check       not complete: %v\n", r.ScrapeErr)
	}
	if len(c.JudgeMetrics) > 0 {
		fmt.Fprintf(w, "  judges received     %.0f points (%s; retries counted again) for %d published\n",
			r.JudgeReceived, MetricJudgeReceived, st.Published)
	}
	if len(c.TransferMetrics) > 0 {
		fmt.Fprintf(w, "  transfer at end     %.0f requests in flight, %.0f points pending, %.0f messages held, %.0f judge retries in total\n",
			r.Transfer[MetricTransferInflight], r.Transfer[MetricTransferPending], r.Transfer[MetricTransferHeld], r.Transfer[MetricTransferRetries])
	}
	if r.CPUErr != nil || math.IsNaN(r.TransferCPU) {
		fmt.Fprintf(w, "  cpu                 not measured: %v\n", r.CPUErr)
	} else {
		fmt.Fprintf(w, "  cpu transfer        %.2f s total, %.2f CPU s per million points\n", r.TransferCPU, r.CPUPerMillion(r.TransferCPU))
		fmt.Fprintf(w, "  cpu judge           %.2f s total, %.2f CPU s per million points\n", r.JudgeCPU, r.CPUPerMillion(r.JudgeCPU))
	}
	for _, warn := range r.Warnings() {
		fmt.Fprintf(w, "  WARNING: %s\n", warn)
	}
}

// Warnings are the reasons the figures above cannot be taken at face value.
func (r *Result) Warnings() []string {
	var out []string
	o := r.Observer
	if o.Missed() {
		out = append(out, "the observer missed messages (dropped, slow consumer or disconnected): acknowledgement counts are too low and lost may include points a judge did acknowledge")
	}
	if r.ConsumerErr == nil && !r.Consumer.Settled() {
		out = append(out, "the transfer consumer still had messages pending or un-acked at the end: raise -drain")
	}
	if len(r.Config.JudgeMetrics) > 0 && r.ScrapeErr == nil && r.JudgeReceived < float64(r.Stats.Published) {
		out = append(out, fmt.Sprintf("the judges counted %.0f points received, fewer than the %d published", r.JudgeReceived, r.Stats.Published))
	}
	return out
}

func rd(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

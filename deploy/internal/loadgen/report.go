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
	fmt.Fprintf(w, "kestrel-loadgen: %d agents x %d series, target %.0f points/s for %s, %d points per batch\n",
		c.Agents, c.Series, c.Rate, c.Duration, c.Batch)
	fmt.Fprintf(w, "  published           %d points (%d acknowledged by the stream, %d publish errors) in %s = %.0f points/s\n",
		st.Issued, st.Published, r.PublishErrors, r.PublishWall.Round(time.Millisecond), r.PublishedRate())
	fmt.Fprintf(w, "  acknowledged        %d points by judges; sustained %.0f points/s (first publish to last judge ack, %s); %.0f points/s within the publish window\n",
		st.Acked, r.SustainedRate(), (st.LastAck - st.FirstPub).Round(time.Millisecond), r.InWindowRate())
	fmt.Fprintf(w, "  latency             publish -> judge ack: p50 %s  p90 %s  p99 %s  max %s\n",
		rd(st.P50), rd(st.P90), rd(st.P99), rd(st.Max))
	fmt.Fprintf(w, "  lost                %d points (published, not acknowledged by a judge after the drain wait)\n", st.Lost)
	fmt.Fprintf(w, "  duplicates          %d repeated judge acknowledgements (redelivery or retry after a timeout)\n", st.DupAcks)
	fmt.Fprintf(w, "  judge requests      %d seen, %d +OK, %d -ERR (retried by transfer), %d other replies, %d unanswered, %d undecodable, observer dropped %d messages\n",
		r.Observer.Requests, r.Observer.OKReplies, r.Observer.ErrReplies, r.Observer.OtherReplies, r.Observer.Unanswered, r.Observer.Undecodable, r.Observer.Dropped)
	if r.CPUErr != nil || math.IsNaN(r.TransferCPU) {
		fmt.Fprintf(w, "  cpu                 not measured: %v\n", r.CPUErr)
	} else {
		fmt.Fprintf(w, "  cpu transfer        %.2f s total, %.2f CPU s per million points\n", r.TransferCPU, r.CPUPerMillion(r.TransferCPU))
		fmt.Fprintf(w, "  cpu judge           %.2f s total, %.2f CPU s per million points\n", r.JudgeCPU, r.CPUPerMillion(r.JudgeCPU))
	}
	if r.Observer.Dropped > 0 {
		fmt.Fprintln(w, "  WARNING: the observer dropped messages; acknowledgement counts are too low")
	}
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

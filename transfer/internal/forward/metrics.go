package forward

import (
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// Retry reasons (label values of JudgeRetries).
const (
	RetryErrorReply   = "error_reply"
	RetryTimeout      = "timeout"
	RetryNoResponders = "no_responders"
	RetryRequestError = "request_error"
	RetryBadReply     = "bad_reply"
	RetryMoved        = "moved"
	RetryPartial      = "partial"
	RetryShutdown     = "shutdown"
)

// Message outcome reasons.
const (
	TermMalformed   = "malformed"
	NakVersion      = "newer_version"
	NakShutdown     = "shutdown"
	ResultOK        = "ok"
	ResultError     = "error_reply"
	ResultTimeout   = "timeout"
	ResultNoResp    = "no_responders"
	ResultReqError  = "request_error"
	ResultBadReply  = "bad_reply"
	ResultMoved     = "moved"
	ResultPartial   = "partial"
	FetchErrorLabel = "fetch_error"
)

// Message operations (label values of MsgOpErrors).
const (
	OpAck        = "ack"
	OpNak        = "nak"
	OpTerm       = "term"
	OpInProgress = "in_progress"
)

// Metrics are the data path's metrics, named kestrel_transfer_*.
type Metrics struct {
	PointsReceived  prometheus.Counter
	PointsForwarded prometheus.Counter
	PointsMoved     prometheus.Counter
	PointsRejected  *prometheus.CounterVec
	Rejected        []prometheus.Counter // indexed by proto.Reason

	MessagesReceived   prometheus.Counter
	MessagesAcked      prometheus.Counter
	MessagesTerminated *prometheus.CounterVec
	MessagesNaked      *prometheus.CounterVec
	ProgressMarks      prometheus.Counter
	MessagesHeld       prometheus.Gauge
	FetchErrors        prometheus.Counter

	JudgeRequestDuration *prometheus.HistogramVec
	RequestDuration      map[string]prometheus.Observer // by result, resolved once
	JudgeRetries         *prometheus.CounterVec
	JudgeInflight        prometheus.Gauge
	PendingPoints        prometheus.Gauge
	JudgePendingPoints   *prometheus.GaugeVec
	ParkedPoints         prometheus.Gauge

	FetchPaused prometheus.Gauge
	// WarmingUp is 1 while the membership warms up (after the start and
	// after every NATS reconnect): nothing is routed, points are parked.
	WarmingUp prometheus.Gauge
	// JudgeSlow{node} is 1 while a judge's requests time out and its
	// in-flight limit is lowered; JudgeSlowdowns counts the times a judge
	// became slow.
	JudgeSlow      *prometheus.GaugeVec
	JudgeSlowdowns prometheus.Counter
	// MsgOpErrors counts failed Ack/Nak/Term/InProgress calls on ingest
	// messages, by op; MsgOpError holds its pre-created children.
	MsgOpErrors *prometheus.CounterVec
	MsgOpError  map[string]prometheus.Counter

	// Points a judge reported not judged (see failed.go).
	FailedTransient, FailedPermanent prometheus.Counter
	DeadLettered, DeadLetterErrors   prometheus.Counter
	FailedWaiting                    prometheus.Gauge
}

// NewMetrics returns the data path's metrics, registered on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := func(c prometheus.Collector) {
		if reg != nil {
			reg.MustRegister(c)
		}
	}
	m := &Metrics{}
	m.PointsReceived = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_points_received_total", Help: "Points decoded from ingest messages."})
	m.PointsForwarded = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_points_forwarded_total", Help: "Points acknowledged by a judge."})
	m.PointsMoved = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_points_moved_total", Help: "Points a judge answered MOVED (not its own in its view of the ring, or gained too recently), routed again."})
	m.PointsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_points_rejected_total", Help: "Invalid points dropped, by reason."}, []string{"reason"})
	m.MessagesReceived = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_messages_received_total", Help: "Ingest messages fetched (redeliveries included)."})
	m.MessagesAcked = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_messages_acked_total", Help: "Ingest messages acknowledged after every valid point was accepted by a judge."})
	m.MessagesTerminated = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_messages_terminated_total", Help: "Ingest messages terminated (never redelivered), by reason."}, []string{"reason"})
	m.MessagesNaked = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_messages_naked_total", Help: "Ingest messages negatively acknowledged for redelivery, by reason."}, []string{"reason"})
	m.ProgressMarks = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_messages_in_progress_marks_total", Help: "In-progress marks sent for messages waiting on judges."})
	m.MessagesHeld = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_messages_held", Help: "Ingest messages fetched and not yet acked (waiting on judges)."})
	m.FetchErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_fetch_errors_total", Help: "Pull requests that failed."})
	m.JudgeRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kestrel_transfer_judge_request_duration_seconds", Help: "Duration of requests to judges, by result.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"result"})
	m.JudgeRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_judge_retries_total", Help: "Judge batches retried, by reason."}, []string{"reason"})
	m.JudgeInflight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_judge_requests_inflight", Help: "Requests to judges awaiting a reply."})
	m.PendingPoints = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_pending_points", Help: "Points routed and not yet acknowledged by a judge (queued, in flight or parked)."})
	m.JudgePendingPoints = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_transfer_judge_pending_points", Help: "Points queued or in flight to one judge."}, []string{"node"})
	m.ParkedPoints = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_parked_points", Help: "Points waiting for any judge to be alive."})
	m.FetchPaused = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_fetch_paused", Help: "1 while fetching is paused because no judge is alive or the ring parameters are not confirmed by the shared bucket."})
	m.WarmingUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_warming_up", Help: "1 while the membership warms up after the start or a NATS reconnect (max(membership.timeout, 2 × the largest heartbeat interval)): nothing is routed, fetched points are parked."})
	m.JudgeSlow = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_transfer_judge_slow", Help: "1 while requests to the judge time out and its in-flight limit is lowered (it stays in the ring unless unresponsive for judge.unresponsive_after)."}, []string{"node"})
	m.JudgeSlowdowns = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_judge_slowdowns_total", Help: "Times a judge became slow (a request timed out): its in-flight limit halved, with backoff, instead of taking it out of the ring."})
	m.MsgOpErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_msg_op_errors_total", Help: "Ack, Nak, Term and InProgress calls on ingest messages that failed, by op (the message is redelivered after ack_wait)."}, []string{"op"})
	m.MsgOpError = make(map[string]prometheus.Counter)
	for _, op := range []string{OpAck, OpNak, OpTerm, OpInProgress} {
		m.MsgOpError[op] = m.MsgOpErrors.WithLabelValues(op)
	}
	f(m.MsgOpErrors)
	for _, c := range []prometheus.Collector{m.PointsReceived, m.PointsForwarded, m.PointsMoved, m.PointsRejected, m.MessagesReceived, m.MessagesAcked,
		m.MessagesTerminated, m.MessagesNaked, m.ProgressMarks, m.MessagesHeld, m.FetchErrors, m.JudgeRequestDuration,
		m.JudgeRetries, m.JudgeInflight, m.PendingPoints, m.JudgePendingPoints, m.ParkedPoints, m.FetchPaused,
		m.WarmingUp, m.JudgeSlow, m.JudgeSlowdowns} {
		f(c)
	}
	reasons := proto.Reasons()
	m.Rejected = make([]prometheus.Counter, int(reasons[len(reasons)-1])+1)
	for _, rs := range reasons {
		m.Rejected[rs] = m.PointsRejected.WithLabelValues(rs.String())
	}
	for _, l := range []string{RetryErrorReply, RetryTimeout, RetryNoResponders, RetryRequestError, RetryBadReply, RetryMoved, RetryPartial} {
		m.JudgeRetries.WithLabelValues(l)
	}
	m.RequestDuration = make(map[string]prometheus.Observer)
	for _, l := range []string{ResultOK, ResultError, ResultTimeout, ResultNoResp, ResultReqError, ResultBadReply, ResultMoved, ResultPartial} {
		m.RequestDuration[l] = m.JudgeRequestDuration.WithLabelValues(l)
	}
	m.MessagesTerminated.WithLabelValues(TermMalformed)
	m.MessagesNaked.WithLabelValues(NakVersion)
	m.MessagesNaked.WithLabelValues(NakShutdown)
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_points_failed_total",
		Help: "Points a judge reported not judged, by class: transient (sent again at once, with the judge's backoff; never dead-lettered), permanent (an error that will recur: sent again after judge.retry_backoff, dead-lettered after dead_letter.after attempts)."},
		[]string{"class"})
	m.FailedTransient, m.FailedPermanent = failed.WithLabelValues("transient"), failed.WithLabelValues("permanent")
	m.DeadLettered = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_points_dead_lettered_total",
		Help: "Points stored in the dead-letter stream after dead_letter.after permanent failures (then acknowledged); see `kestrel-transfer deadletter`."})
	m.DeadLetterErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_dead_letter_errors_total",
		Help: "Dead-letter publications that failed (the stream is full or unreachable): the points stay held and are published again after judge.retry_backoff."})
	m.FailedWaiting = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_failed_points_waiting",
		Help: "Points a judge failed permanently, waiting to be sent again or to be dead-lettered."})
	for _, c := range []prometheus.Collector{failed, m.DeadLettered, m.DeadLetterErrors, m.FailedWaiting} {
		f(c)
	}
	return m
}

// RejectedCounter returns the counter of reason r.
func (m *Metrics) RejectedCounter(r proto.Reason) prometheus.Counter {
	if int(r) < len(m.Rejected) && m.Rejected[r] != nil {
		return m.Rejected[r]
	}
	return m.PointsRejected.WithLabelValues(r.String())
}

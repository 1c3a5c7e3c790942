package engine

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's metrics (kestrel_judge_*): the requests and
// points it judges, the alarms it writes, the series it holds, what
// ownership does to the data path (own.go) and the points it reports
// unjudged (failure.go). Label children used on the hot path are resolved
// once here, so counting allocates nothing.
type Metrics struct {
	reg prometheus.Registerer // New registers the queue depth on it

	PointsReceived  prometheus.Counter
	PointsEvaluated prometheus.Counter // points that had at least one matching rule
	RuleEvals       prometheus.Counter
	AlarmsProblem   prometheus.Counter
	AlarmsOK        prometheus.Counter
	CASConflicts    prometheus.Counter
	StateLoads      prometheus.Counter
	RedisErrors     prometheus.Counter
	RequestsOK      prometheus.Counter
	RequestsError   prometheus.Counter
	RequestsBad     prometheus.Counter
	RequestDuration prometheus.Histogram
	Series          prometheus.Gauge
	Evictions       prometheus.Counter

	// Late points and counter resets.
	IgnoredTooOld    prometheus.Counter // the window is full and the point is older than all of it
	IgnoredDuplicate prometheus.Counter // a point with the same timestamp is held (the first is kept)
	PointsLate       prometheus.Counter // points older than the newest, inserted in time order and judged
	RuleEvalsSkipped prometheus.Counter // evaluations as of a point older than the alarm's eventTime
	CounterResets    prometheus.Counter // COUNTER decreases committed (no rate for that interval)

	// Ownership.
	PointsMoved  prometheus.Counter
	SeriesReset  prometheus.Counter
	BatchLoads   prometheus.Counter
	SeriesPruned prometheus.Counter
	// Unreadable counts stored alarm states that could not be read (see
	// alarm.State.Unreadable); they are judged as absent and overwritten.
	Unreadable prometheus.Counter

	// Points reported unjudged, by failure class (failMoved is PointsMoved).
	FailedTransient prometheus.Counter
	FailedPermanent prometheus.Counter
}

// NewMetrics registers the engine's metrics on reg. The engine built with
// them (New) adds the depth of its worker queues.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reg: reg}
	var cs []prometheus.Collector
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		cs = append(cs, c)
		return c
	}
	// vec registers a counter with one label and returns its children for
	// values, in order.
	vec := func(name, help, label string, values ...string) []prometheus.Counter {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
		cs = append(cs, v)
		out := make([]prometheus.Counter, len(values))
		for i, val := range values {
			out[i] = v.WithLabelValues(val)
		}
		return out
	}
	m.PointsReceived = f("kestrel_judge_points_received_total", "Points received in requests from transfers.")
	m.PointsEvaluated = f("kestrel_judge_points_evaluated_total", "Points that matched at least one rule and were evaluated.")
	m.RuleEvals = f("kestrel_judge_rule_evaluations_total",
		"Rule evaluations (one per matching rule per point; a late point also as of every newer point of its window).")
	m.RuleEvalsSkipped = f("kestrel_judge_rule_evaluations_skipped_total",
		"Rule evaluations as of a point older than the eventTime of the alarm's state (decided from a newer point): no event.")
	ignored := vec("kestrel_judge_points_ignored_total",
		"Points not judged, by reason (too_old: the window is full and the point is older than all of it; duplicate: a point with the same timestamp is held, the first one is kept).",
		"reason", "too_old", "duplicate")
	m.IgnoredTooOld, m.IgnoredDuplicate = ignored[0], ignored[1]
	m.PointsLate = f("kestrel_judge_points_late_total",
		"Points older than the newest of their series, inserted in time order and judged (the newer points are judged again).")
	m.CounterResets = f("kestrel_judge_counter_resets_total",
		"COUNTER points committed below the point before them (the counter was reset): no rate for that interval.")
	alarms := vec("kestrel_judge_alarms_written_total", "Alarm events written to Redis, by status.", "status", "PROBLEM", "OK")
	m.AlarmsProblem, m.AlarmsOK = alarms[0], alarms[1]
	m.CASConflicts = f("kestrel_judge_cas_conflicts_total", "Alarm writes refused because the stored state changed; the judge re-decided.")
	m.StateLoads = f("kestrel_judge_alarm_state_loads_total", "Alarm states loaded from Redis into the cache.")
	m.RedisErrors = f("kestrel_judge_redis_errors_total", "Redis operations that failed (the request is answered with an error and retried).")
	reqs := vec("kestrel_judge_requests_total", "Requests answered, by result (ok, error: retry, bad_batch: undecodable).",
		"result", "ok", "error", "bad_batch")
	m.RequestsOK, m.RequestsError, m.RequestsBad = reqs[0], reqs[1], reqs[2]
	m.RequestDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kestrel_judge_request_duration_seconds",
		Help: "Time from receiving a request to replying.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)})
	m.Series = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_judge_series", Help: "Series held in windows."})
	m.Evictions = f("kestrel_judge_series_evicted_total", "Series evicted after window.idle_evict without points.")

	// Points reported unjudged, by class (moved: PointsMoved), and what
	// ownership does to the series.
	failed := vec("kestrel_judge_points_failed_total",
		"Points not judged and reported failed to the transfer, by class: transient (Redis unreachable or slow; sent again, never dead-lettered), permanent (an error that will recur, e.g. WRONGTYPE on an event list; the transfer dead-letters the point after its limit).",
		"class", "transient", "permanent")
	m.FailedTransient, m.FailedPermanent = failed[0], failed[1]
	m.SeriesPruned = f("kestrel_judge_series_pruned_total", "Series dropped because their partition is no longer owned.")
	m.PointsMoved = f("kestrel_judge_points_moved_total",
		"Points refused with a MOVED reply: their series is not served here (not owned in this judge's ring, or gained less than ownership.settle ago); the transfer routes them again.")
	m.SeriesReset = f("kestrel_judge_series_reset_total",
		"Series whose window was dropped and alarm states re-read because this judge did not own them throughout.")
	m.BatchLoads = f("kestrel_judge_state_batch_loads_total",
		"Pipelined Redis round trips that loaded alarm states (many states per trip).")
	m.Unreadable = f("kestrel_judge_alarm_states_unreadable_total",
		"Stored alarm states that could not be read (bad status or numbers, a key of another type): judged as absent, overwritten by the next transition.")

	reg.MustRegister(append(cs, m.RequestDuration, m.Series)...)
	return m
}

// registerQueueDepth registers a gauge reporting the depth of the worker
// queues (f reads them).
func (m *Metrics) registerQueueDepth(f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kestrel_judge_queue_depth",
		Help: "Request parts waiting in the worker queues."}, f))
}

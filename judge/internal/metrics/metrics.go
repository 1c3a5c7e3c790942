// Package metrics defines the judge's Prometheus metrics on one registry.
// The NATS connection's (kestrel_judge_nats_...) are lib/natsconn's,
// registered on the same registry by the app.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the judge's metrics. Label children used on the hot path are
// resolved once here, so counting allocates nothing.
type Metrics struct {
	Registry *prometheus.Registry

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
	Rules           prometheus.Gauge
	Evictions       prometheus.Counter
	ReloadOK        prometheus.Counter
	ReloadError     prometheus.Counter
	Heartbeats      prometheus.Counter
	HeartbeatErrors prometheus.Counter
	ReplyErrors     prometheus.Counter // replies to transfers that could not be sent
	ignored         *prometheus.CounterVec

	// Late points and counter resets.
	IgnoredTooOld    prometheus.Counter // the window is full and the point is older than all of it
	IgnoredDuplicate prometheus.Counter // a point with the same timestamp is held (the first is kept)
	PointsLate       prometheus.Counter // points older than the newest, inserted in time order and judged
	RuleEvalsSkipped prometheus.Counter // evaluations as of a point older than the alarm's eventTime
	CounterResets    prometheus.Counter // COUNTER decreases committed (no rate for that interval)
}

// New registers every metric on a fresh registry, with the Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		r.MustRegister(c)
		return c
	}
	m := &Metrics{Registry: r}
	m.PointsReceived = f("kestrel_judge_points_received_total", "Points received in requests from transfers.")
	m.PointsEvaluated = f("kestrel_judge_points_evaluated_total", "Points that matched at least one rule and were evaluated.")
	m.RuleEvals = f("kestrel_judge_rule_evaluations_total",
		"Rule evaluations (one per matching rule per point; a late point also as of every newer point of its window).")
	m.RuleEvalsSkipped = f("kestrel_judge_rule_evaluations_skipped_total",
		"Rule evaluations as of a point older than the eventTime of the alarm's state (decided from a newer point): no event.")
	m.ignored = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_judge_points_ignored_total",
		Help: "Points not judged, by reason (too_old: the window is full and the point is older than all of it; duplicate: a point with the same timestamp is held, the first one is kept)."}, []string{"reason"})
	r.MustRegister(m.ignored)
	m.IgnoredTooOld = m.ignored.WithLabelValues("too_old")
	m.IgnoredDuplicate = m.ignored.WithLabelValues("duplicate")
	m.PointsLate = f("kestrel_judge_points_late_total",
		"Points older than the newest of their series, inserted in time order and judged (the newer points are judged again).")
	m.CounterResets = f("kestrel_judge_counter_resets_total",
		"COUNTER points committed below the point before them (the counter was reset): no rate for that interval.")
	alarms := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_judge_alarms_written_total",
		Help: "Alarm events written to Redis, by status."}, []string{"status"})
	r.MustRegister(alarms)
	m.AlarmsProblem = alarms.WithLabelValues("PROBLEM")
	m.AlarmsOK = alarms.WithLabelValues("OK")
	m.CASConflicts = f("kestrel_judge_cas_conflicts_total", "Alarm writes refused because the stored state changed; the judge re-decided.")
	m.StateLoads = f("kestrel_judge_alarm_state_loads_total", "Alarm states loaded from Redis into the cache.")
	m.RedisErrors = f("kestrel_judge_redis_errors_total", "Redis operations that failed (the request is answered with an error and retried).")
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_judge_requests_total",
		Help: "Requests answered, by result (ok, error: retry, bad_batch: undecodable)."}, []string{"result"})
	r.MustRegister(reqs)
	m.RequestsOK = reqs.WithLabelValues("ok")
	m.RequestsError = reqs.WithLabelValues("error")
	m.RequestsBad = reqs.WithLabelValues("bad_batch")
	m.RequestDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kestrel_judge_request_duration_seconds",
		Help: "Time from receiving a request to replying.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)})
	r.MustRegister(m.RequestDuration)
	m.Series = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_judge_series", Help: "Series held in windows."})
	m.Rules = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_judge_rules", Help: "Rules loaded (strategies + expressions)."})
	r.MustRegister(m.Series, m.Rules)
	m.Evictions = f("kestrel_judge_series_evicted_total", "Series evicted after window.idle_evict without points.")
	reload := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_judge_rules_reload_total",
		Help: "Rule reloads (SIGHUP), by result."}, []string{"result"})
	r.MustRegister(reload)
	m.ReloadOK = reload.WithLabelValues("ok")
	m.ReloadError = reload.WithLabelValues("error")
	m.Heartbeats = f("kestrel_judge_heartbeats_sent_total", "Membership heartbeats published.")
	m.HeartbeatErrors = f("kestrel_judge_heartbeat_errors_total", "Membership heartbeats that could not be published.")
	m.ReplyErrors = f("kestrel_judge_reply_errors_total",
		"Replies to transfer requests that could not be sent (the transfer's request times out and it sends the points again).")
	return m
}

// RequestSubscription registers the depth of the request subscription's
// pending queue and the requests it dropped (pending limit exceeded: the
// transfer times out and retries them). The funcs read the subscription.
func (m *Metrics) RequestSubscription(pending, dropped func() float64) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kestrel_judge_request_queue_depth",
			Help: "Requests received from NATS and not yet handed to the engine (the subscription's pending queue)."}, pending),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kestrel_judge_requests_dropped_total",
			Help: "Requests dropped by the NATS client because the request subscription's pending limit was exceeded (never answered: the transfer retries after its request timeout)."}, dropped),
	)
}

// QueueDepth registers a gauge reporting the depth of the worker queues.
func (m *Metrics) QueueDepth(f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kestrel_judge_queue_depth",
		Help: "Request parts waiting in the worker queues."}, f))
}

package service

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the NATS service's metrics (kestrel_judge_*): its replies,
// its heartbeats and, once started, its request subscription.
type Metrics struct {
	reg prometheus.Registerer // Start registers the request subscription's on it

	Heartbeats      prometheus.Counter
	HeartbeatErrors prometheus.Counter
	ReplyErrors     prometheus.Counter // replies to transfers that could not be sent
}

// NewMetrics registers the service's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg:             reg,
		Heartbeats:      prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_judge_heartbeats_sent_total", Help: "Membership heartbeats published."}),
		HeartbeatErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_judge_heartbeat_errors_total", Help: "Membership heartbeats that could not be published."}),
		ReplyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_judge_reply_errors_total",
			Help: "Replies to transfer requests that could not be sent (the transfer's request times out and it sends the points again)."}),
	}
	reg.MustRegister(m.Heartbeats, m.HeartbeatErrors, m.ReplyErrors)
	return m
}

// registerRequestSubscription registers the depth of the request
// subscription's pending queue and the requests it dropped (pending limit
// exceeded: the transfer times out and retries them). The funcs read the
// subscription.
func (m *Metrics) registerRequestSubscription(pending, dropped func() float64) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kestrel_judge_request_queue_depth",
			Help: "Requests received from NATS and not yet handed to the engine (the subscription's pending queue)."}, pending),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kestrel_judge_requests_dropped_total",
			Help: "Requests dropped by the NATS client because the request subscription's pending limit was exceeded (never answered: the transfer retries after its request timeout)."}, dropped),
	)
}

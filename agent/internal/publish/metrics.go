package publish

import "github.com/prometheus/client_golang/prometheus"

// Error kinds of a failed publish (label "kind" of
// kestrel_agent_publish_errors_total).
const (
	KindTimeout      = "timeout"
	KindNoResponders = "no_responders"
	KindDisconnected = "disconnected"
	KindRejected     = "rejected"
	KindTooLarge     = "too_large"
	KindOther        = "other"
)

// Drop reasons (label "reason" of the dropped counters).
const (
	DropQueueFull = "queue_full"
	DropShutdown  = "shutdown"
	DropTooLarge  = "too_large"
)

// Metrics of the publisher and its retry queue.
type Metrics struct {
	BatchesPublished prometheus.Counter
	PointsPublished  prometheus.Counter
	PublishErrors    *prometheus.CounterVec
	Retries          prometheus.Counter
	QueueBatches     prometheus.Gauge
	QueueBytes       prometheus.Gauge
	DroppedBatches   *prometheus.CounterVec
	DroppedPoints    *prometheus.CounterVec
}

// NewMetrics creates and registers the publisher metrics, with every label
// value pre-created.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		BatchesPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kestrel_agent_batches_published_total",
			Help: "Batches acknowledged by JetStream.",
		}),
		PointsPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kestrel_agent_points_published_total",
			Help: "Points in batches acknowledged by JetStream.",
		}),
		PublishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kestrel_agent_publish_errors_total",
			Help: "Failed publish attempts by kind (timeout, no_responders, disconnected, rejected, too_large, other).",
		}, []string{"kind"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kestrel_agent_publish_retries_total",
			Help: "Publish attempts of a batch that had failed before.",
		}),
		QueueBatches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kestrel_agent_retry_queue_batches",
			Help: "Batches waiting for a JetStream ack (in flight or waiting for a retry).",
		}),
		QueueBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kestrel_agent_retry_queue_bytes",
			Help: "Bytes of the batches waiting for a JetStream ack.",
		}),
		DroppedBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kestrel_agent_dropped_batches_total",
			Help: "Batches dropped without an ack, by reason (queue_full, shutdown, too_large).",
		}, []string{"reason"}),
		DroppedPoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kestrel_agent_dropped_points_total",
			Help: "Points dropped without an ack, by reason (queue_full, shutdown, too_large).",
		}, []string{"reason"}),
	}
	for _, k := range []string{KindTimeout, KindNoResponders, KindDisconnected, KindRejected, KindTooLarge, KindOther} {
		m.PublishErrors.WithLabelValues(k)
	}
	for _, r := range []string{DropQueueFull, DropShutdown, DropTooLarge} {
		m.DroppedBatches.WithLabelValues(r)
		m.DroppedPoints.WithLabelValues(r)
	}
	reg.MustRegister(m.BatchesPublished, m.PointsPublished, m.PublishErrors, m.Retries,
		m.QueueBatches, m.QueueBytes, m.DroppedBatches, m.DroppedPoints)
	return m
}

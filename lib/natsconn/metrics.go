package natsconn

import (
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrorKind classifies an asynchronous NATS error.
type ErrorKind int

const (
	// KindOther is any asynchronous error but a slow consumer.
	KindOther ErrorKind = iota
	// KindSlowConsumer: the client dropped messages of a subscription
	// whose pending limit was reached.
	KindSlowConsumer
)

// KindOf classifies err.
func KindOf(err error) ErrorKind {
	if errors.Is(err, nats.ErrSlowConsumer) {
		return KindSlowConsumer
	}
	return KindOther
}

// String is the kind's metric label value.
func (k ErrorKind) String() string {
	if k == KindSlowConsumer {
		return "slow_consumer"
	}
	return "other"
}

// Metrics count what happens on the connection, named <prefix>_nats_...
// (the judge's former kestrel_judge_nats_slow_consumer_events_total is
// <prefix>_nats_async_errors_total{kind="slow_consumer"}).
type Metrics struct {
	// AsyncErrors: <prefix>_nats_async_errors_total{kind}.
	AsyncErrors *prometheus.CounterVec
}

// NewMetrics returns the connection metrics named <prefix>_nats_..., e.g.
// prefix "kestrel_agent", registered on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer, prefix string) *Metrics {
	m := &Metrics{
		AsyncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_nats_async_errors_total",
			Help: "Asynchronous NATS errors, by kind (slow_consumer: the client dropped messages of a subscription; they are redelivered or retried)."},
			[]string{"kind"}),
	}
	for _, k := range []ErrorKind{KindSlowConsumer, KindOther} {
		m.AsyncErrors.WithLabelValues(k.String())
	}
	if reg != nil {
		reg.MustRegister(m.AsyncErrors)
	}
	return m
}

func (m *Metrics) asyncError(k ErrorKind) {
	if m == nil {
		return
	}
	m.AsyncErrors.WithLabelValues(k.String()).Inc()
}

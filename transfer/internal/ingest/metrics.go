package ingest

import (
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// Listener names (the listener label).
const (
	ListenerJSONRPC  = "jsonrpc"
	ListenerHTTPPush = "http_push"
	ListenerTelnet   = "telnet"
	ListenerOpenTSDB = "opentsdb_telnet"
	ListenerTSDBHTTP = "opentsdb_http"
)

// listeners lists every listener label.
func listeners() []string {
	return []string{ListenerJSONRPC, ListenerHTTPPush, ListenerTelnet, ListenerOpenTSDB, ListenerTSDBHTTP}
}

// Refusal reasons: a request (or connection) turned away before its points
// were stored; the client is told to retry, or that its input is bad.
const (
	RefusedBusy        = "busy"        // max_pending_points reached for max_wait
	RefusedUnavailable = "unavailable" // the stream did not store a batch
	RefusedStopping    = "stopping"
	RefusedTooLarge    = "too_large"  // a request or line over its limit
	RefusedMalformed   = "malformed"  // undecodable request
	RefusedConnLimit   = "conn_limit" // max_connections reached
	RefusedTimeout     = "timeout"    // read or idle timeout
)

const (
	resultOK    = 0
	resultError = 1
)

// Metrics are the listeners' metrics (kestrel_transfer_ingest_*).
type Metrics struct {
	Requests        *prometheus.CounterVec // {listener}
	PointsAccepted  *prometheus.CounterVec // {listener}: valid, handed to the publisher
	Rejected        *prometheus.CounterVec // {listener, reason}: invalid points
	Refused         *prometheus.CounterVec // {listener, reason}: requests turned away
	Connections     *prometheus.GaugeVec   // {listener}: open connections
	PointsStored    prometheus.Counter
	PointsUnstored  prometheus.Counter
	Batches         [2]prometheus.Counter // by result
	PublishDuration prometheus.Histogram
	PendingPoints   prometheus.Gauge
}

// NewMetrics registers the listeners' metrics on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	batches := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_ingest_batches_total",
		Help: "Ingest batches the listeners published to the stream, by result (error: their clients got a retryable error)."}, []string{"result"})
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_ingest_requests_total",
			Help: "Client requests (RPC calls, HTTP posts, telnet/put lines) received, by listener."}, []string{"listener"}),
		PointsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_ingest_points_accepted_total",
			Help: "Valid points received from clients, by listener (acknowledged to the client once stored)."}, []string{"listener"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_ingest_points_rejected_total",
			Help: "Invalid points received from clients and dropped (counted Invalid in the reply), by listener and reason."}, []string{"listener", "reason"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_transfer_ingest_refused_total",
			Help: "Client requests or connections turned away, by listener and reason (busy, unavailable, stopping: the client is told to retry; too_large, malformed: bad input; conn_limit, timeout)."}, []string{"listener", "reason"}),
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_transfer_ingest_connections",
			Help: "Open client connections, by listener."}, []string{"listener"}),
		PointsStored: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_ingest_points_stored_total",
			Help: "Points from clients stored in the ingest stream (PubAck received)."}),
		PointsUnstored: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_transfer_ingest_points_unstored_total",
			Help: "Points from clients whose batch the stream did not store: their clients got a retryable error."}),
		PendingPoints: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_transfer_ingest_pending_points",
			Help: "Points accepted from clients and not yet stored (bounded by ingest.max_pending_points)."}),
		PublishDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kestrel_transfer_ingest_publish_seconds",
			Help: "Time to store one ingest batch (publish to PubAck).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	m.Batches[resultOK], m.Batches[resultError] = batches.WithLabelValues("ok"), batches.WithLabelValues("error")
	for _, l := range listeners() {
		m.Requests.WithLabelValues(l)
		m.PointsAccepted.WithLabelValues(l)
		m.Connections.WithLabelValues(l)
		for _, r := range []string{RefusedBusy, RefusedUnavailable, RefusedStopping, RefusedTooLarge, RefusedMalformed, RefusedConnLimit, RefusedTimeout} {
			m.Refused.WithLabelValues(l, r)
		}
		for _, r := range proto.Reasons() {
			m.Rejected.WithLabelValues(l, r.String())
		}
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.PointsAccepted, m.Rejected, m.Refused, m.Connections, m.PointsStored, m.PointsUnstored, batches, m.PublishDuration, m.PendingPoints)
	}
	return m
}

package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Heartbeat rejection reasons (closed set).
var rejectReasons = []string{"method", "unauthorized", "forbidden", "too_large", "empty_body", "bad_json", "bad_hostname", "bad_agent", "store_error"}

type metrics struct {
	heartbeats    prometheus.Counter
	rejected      *prometheus.CounterVec
	storeErrors   *prometheus.CounterVec
	hosts         *prometheus.GaugeVec
	rolloutWave   *prometheus.GaugeVec
	rolloutHosts  *prometheus.GaugeVec
	promotions    prometheus.Counter
	halts         prometheus.Counter
	completions   prometheus.Counter
	reloads       *prometheus.CounterVec
	apiRejected   *prometheus.CounterVec
	evaluations   *prometheus.CounterVec
	rolloutStatus *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_ops_meta_heartbeats_received_total",
			Help: "Heartbeats received (accepted or not)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_ops_meta_heartbeats_rejected_total",
			Help: "Heartbeats rejected, by reason."}, []string{"reason"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_ops_meta_store_errors_total",
			Help: "Inventory store failures, by operation."}, []string{"op"}),
		hosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_ops_meta_hosts",
			Help: "Hosts in the inventory: fresh (seen within inventory.stale_after) or stale."}, []string{"state"}),
		rolloutWave: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_ops_meta_rollout_wave",
			Help: "Promoted waves of each rollout (0 once halted or aborted)."}, []string{"rollout"}),
		rolloutHosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_ops_meta_rollout_hosts",
			Help: "Hosts of each rollout by state (waiting, pending, healthy, failed)."}, []string{"rollout", "state"}),
		rolloutStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kestrel_ops_meta_rollout_status",
			Help: "1 for the current status of each rollout."}, []string{"rollout", "status"}),
		promotions: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_ops_meta_rollout_promotions_total",
			Help: "Waves promoted by this instance."}),
		halts: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_ops_meta_rollout_halts_total",
			Help: "Rollouts halted by this instance."}),
		completions: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_ops_meta_rollout_completions_total",
			Help: "Rollouts completed by this instance."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_ops_meta_config_reloads_total",
			Help: "Config reloads by result (ok, error)."}, []string{"result"}),
		apiRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_ops_meta_api_rejected_total",
			Help: "Admin API requests rejected, by reason."}, []string{"reason"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_ops_meta_rollout_evaluations_total",
			Help: "Rollout evaluation rounds by result (ok, error)."}, []string{"result"}),
	}
	reg.MustRegister(m.heartbeats, m.rejected, m.storeErrors, m.hosts, m.rolloutWave, m.rolloutHosts, m.rolloutStatus,
		m.promotions, m.halts, m.completions, m.reloads, m.apiRejected, m.evaluations,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
		m.evaluations.WithLabelValues(r)
	}
	for _, r := range []string{"unauthorized", "forbidden", "bad_request"} {
		m.apiRejected.WithLabelValues(r)
	}
	return m
}

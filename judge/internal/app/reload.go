package app

import "github.com/prometheus/client_golang/prometheus"

// rulesMetrics count the rules loaded and the reloads (SIGHUP).
type rulesMetrics struct {
	rules  prometheus.Gauge
	reload *prometheus.CounterVec // {result}: ok, error
}

func newRulesMetrics(reg prometheus.Registerer) *rulesMetrics {
	m := &rulesMetrics{
		rules: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_judge_rules", Help: "Rules loaded (strategies + expressions)."}),
		reload: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_judge_rules_reload_total",
			Help: "Rule reloads (SIGHUP), by result."}, []string{"result"}),
	}
	for _, r := range []string{"ok", "error"} {
		m.reload.WithLabelValues(r) // exported from the start, at 0
	}
	reg.MustRegister(m.rules, m.reload)
	return m
}

// Reload re-reads the rules file; on error the old rules stay.
func (a *App) Reload() error {
	s, err := a.Rules.Reload()
	if err != nil {
		a.rulesM.reload.WithLabelValues("error").Inc()
		a.log.Error("rules reload failed, keeping the old rules", "file", a.cfg.RulesFile, "err", err)
		return err
	}
	a.rulesM.reload.WithLabelValues("ok").Inc()
	a.rulesM.rules.Set(float64(s.Len()))
	a.log.Info("rules reloaded", "file", a.cfg.RulesFile, "rules", s.Len())
	return nil
}

package app

import "github.com/prometheus/client_golang/prometheus"

// rulesMetrics count the rules loaded and the reloads (SIGHUP).
type rulesMetrics struct {
	rules       prometheus.Gauge
	reloadOK    prometheus.Counter
	reloadError prometheus.Counter
}

func newRulesMetrics(reg prometheus.Registerer) *rulesMetrics {
	reload := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kestrel_judge_rules_reload_total",
		Help: "Rule reloads (SIGHUP), by result."}, []string{"result"})
	m := &rulesMetrics{
		rules:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_judge_rules", Help: "Rules loaded (strategies + expressions)."}),
		reloadOK:    reload.WithLabelValues("ok"),
		reloadError: reload.WithLabelValues("error"),
	}
	reg.MustRegister(m.rules, reload)
	return m
}

// Reload re-reads the rules file; on error the old rules stay.
func (a *App) Reload() error {
	s, err := a.Rules.Reload()
	if err != nil {
		a.rulesM.reloadError.Inc()
		a.log.Error("rules reload failed, keeping the old rules", "file", a.cfg.RulesFile, "err", err)
		return err
	}
	a.rulesM.reloadOK.Inc()
	a.rulesM.rules.Set(float64(s.Len()))
	a.log.Info("rules reloaded", "file", a.cfg.RulesFile, "rules", s.Len())
	return nil
}

package server

import (
	"bytes"
	"html/template"
	"net/http"
	"time"
)

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Truncate(time.Second).String() + " ago"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ops-meta fleet</title>
<meta http-equiv="refresh" content="30">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f3f3f3}.stale{color:#999}.err{color:#b00}.ok{color:#070}
.running{color:#06c}.halted,.aborted{color:#b00}.completed{color:#070}.paused{color:#a60}
</style></head><body>
<h1>ops-meta fleet</h1>
<p>{{len .Hosts}} hosts, generated {{ts .Now}}.</p>
<h2>Rollouts</h2>
{{if not .Rollouts}}<p>No rollouts.</p>{{end}}
{{range .Rollouts}}
<h3 id="rollout-{{.ID}}">{{.ID}}: {{.Agent}} {{.From}} → {{.To}} <span class="{{.Status}}">{{.Status}}</span></h3>
<p>wave {{.Wave}} of {{len .Waves}}, soak {{.Soak}}, deadline {{.Deadline}}, failure threshold {{.FailureThreshold}}{{if .Reason}}, <span class="err">{{.Reason}}</span>{{end}}</p>
<table class="waves"><tr><th>wave</th><th>fleet %</th><th>promoted</th><th>opened</th><th>hosts</th><th>healthy</th><th>pending</th><th>failed</th><th>waiting</th><th>threshold</th></tr>
{{range .Progress}}<tr><td>{{.Wave}}</td><td>{{.Percent}}%</td><td>{{if .Promoted}}yes{{else}}no{{end}}</td><td>{{ts .OpenedAt}}</td><td>{{.Hosts}}</td><td class="ok">{{.Healthy}}</td><td>{{.Pending}}</td><td class="err">{{.Failed}}</td><td>{{.Waiting}}</td><td>{{.Threshold}}</td></tr>
{{end}}</table>
{{end}}
<h2>Hosts</h2>
<table class="hosts"><tr><th>hostname</th><th>address</th><th>last seen</th><th>agent</th><th>version</th><th>status</th><th>pending</th><th>error</th></tr>
{{$now := .Now}}
{{range .Hosts}}{{$h := .}}
{{if not .Agents}}<tr class="{{if .Stale}}stale{{end}}"><td>{{.Name}}</td><td>{{.Addr}}</td><td title="{{ts .LastSeen}}">{{ago $now .LastSeen}}</td><td colspan="5">no agents</td></tr>{{end}}
{{range .Agents}}<tr class="{{if $h.Stale}}stale{{end}}"><td>{{$h.Name}}</td><td>{{$h.Addr}}</td><td title="{{ts $h.LastSeen}}">{{ago $now $h.LastSeen}}</td><td>{{.Name}}</td><td>{{.Version}}</td><td class="{{if eq .Status "started"}}ok{{else}}err{{end}}">{{.Status}}</td><td>{{.Pending}}</td><td class="err">{{.Error}}</td></tr>
{{end}}{{end}}</table>
<p><a href="/api/v1/hosts">hosts JSON</a> · <a href="/api/v1/rollouts">rollouts JSON</a> · <a href="/metrics">metrics</a></p>
</body></html>
`))

type pageData struct {
	Now      time.Time
	Hosts    []HostView
	Rollouts []RolloutView
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	hosts, err := s.hostViews(ctx)
	if err != nil {
		http.Error(w, "cannot read inventory: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	rs, err := s.store.Rollouts(ctx)
	if err != nil {
		http.Error(w, "cannot read rollouts: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fleet, err := s.fleet(ctx)
	if err != nil {
		http.Error(w, "cannot read inventory: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	d := pageData{Now: s.now(), Hosts: hosts}
	for i := len(rs) - 1; i >= 0; i-- { // newest first
		d.Rollouts = append(d.Rollouts, s.view(&rs[i], fleet, false))
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		http.Error(w, "cannot render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

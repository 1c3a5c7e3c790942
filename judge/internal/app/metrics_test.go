package app

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

// readmeMetrics returns the metrics of the judge README's metrics table,
// name → type, from the first column of every row (a cell may name
// several, each with its labels in braces) and the second.
func readmeMetrics(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal("README.md has no ## Metrics section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	name := regexp.MustCompile("`(kestrel_judge_[a-z_]+)(\\{[a-z_,]*\\})?`")
	want := map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "kestrel_judge_") {
			continue
		}
		typ := strings.TrimSpace(cells[2])
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			want[m[1]] = typ
		}
	}
	if len(want) < 20 {
		t.Fatalf("read %d metrics from README.md's table, want at least 20: %v", len(want), want)
	}
	return want
}

// exported returns the metric families of a /metrics body, name → type.
func exported(body string) map[string]string {
	got := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			got[f[2]] = f[3]
		}
	}
	return got
}

// Every metric the README's table documents is on the /metrics of a
// running judge, with the documented type: each package registers its own
// on the app's registry, and none may be lost on the way.
func TestMetricsEndpointExportsEveryDocumentedMetric(t *testing.T) {
	want := readmeMetrics(t)
	ns := natstest.StartServer(t)
	rs := redistest.Start(t)
	cfg, _ := testConfig(t, ns.ClientURL(), rs.Addr, "judge-metrics")
	a, stop := start(t, cfg)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	url := "http://" + a.HTTPAddr() + "/metrics"
	// The request subscription's metrics come with the service's start.
	wait.Until(t, "every documented metric on /metrics", 20*time.Second, func() error {
		code, body := httpGet(t, url)
		if code != 200 {
			return fmt.Errorf("GET /metrics: %d", code)
		}
		got := exported(body)
		var bad []string
		for name, typ := range want {
			switch g, ok := got[name]; {
			case !ok:
				bad = append(bad, name+" missing")
			case g != typ:
				bad = append(bad, fmt.Sprintf("%s is a %s, documented as a %s", name, g, typ))
			}
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			return fmt.Errorf("%s", strings.Join(bad, "; "))
		}
		if _, ok := got["process_cpu_seconds_total"]; !ok {
			return fmt.Errorf("no process collector")
		}
		if _, ok := got["go_goroutines"]; !ok {
			return fmt.Errorf("no Go collector")
		}
		return nil
	})
}

//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

const seqRules = `expressions:
  - id: 7
    metric: e2e.seq
    tags: {}
    func: "all(#1)"
    operator: ">"
    rightValue: 0
    maxStep: 1
    priority: 3
    note: one event per series
    actionId: 1
`

// Every point is its own series (tag seq=N) and fires once. A judge is
// SIGKILLed in the middle; Redis must end with exactly one PROBLEM event
// per N: none missing, none twice.
func TestNoLossNoDuplicatesUnderJudgeCrash(t *testing.T) {
	c := startCluster(t, clusterSpec{transfers: 2, judges: 2, rules: seqRules})
	// Both transfers must have both judges in their rings, or the crash
	// would not move any series.
	c.waitJudgesInRings(t)

	const total = 1200
	const perPush = 20
	ts := proto.AlignTimestamp(time.Now().Unix(), 60) - 60
	killAt := total / 3
	for n := 0; n < total; n += perPush {
		var items []string
		for k := n; k < n+perPush; k++ {
			items = append(items, mv("e2e-seq-host", "e2e.seq", "seq="+strconv.Itoa(k), 1, ts))
		}
		c.push("[" + strings.Join(items, ",") + "]")
		if n == killAt {
			if err := syscall.Kill(c.judges[1].Pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-c.judges[1].Done()
			t.Logf("SIGKILLed %s after %d points", c.judges[1].Name, n+perPush)
		}
		time.Sleep(10 * time.Millisecond)
	}

	type key struct {
		id, status  string
		eventTime   float64
		currentStep float64
	}
	want := make(map[string]int, total) // event id → seq
	for k := range total {
		want[proto.ExpressionEventID(7, proto.SeriesKey("e2e-seq-host", "e2e.seq", []proto.Tag{{Key: "seq", Value: strconv.Itoa(k)}}))] = k
	}
	var counts map[key]int
	var problems map[string]int
	waitRunning(t, fmt.Sprintf("%d PROBLEM events in kestrel:events", total), 3*time.Minute, func() bool {
		counts = map[key]int{}
		problems = map[string]int{}
		for _, s := range c.streamEvents(t) {
			e := s.event
			id, _ := e["id"].(string)
			status, _ := e["status"].(string)
			et, _ := e["eventTime"].(float64)
			cs, _ := e["currentStep"].(float64)
			counts[key{id, status, et, cs}]++
			if status == "PROBLEM" {
				problems[id]++
			}
		}
		return len(problems) >= total
	}, c.judges[0], c.transfers[0], c.transfers[1], c.agent)

	for k, n := range counts {
		if n > 1 {
			t.Errorf("duplicate event %+v written %d times", k, n)
		}
	}
	var missing []int
	for id, seq := range want {
		if problems[id] == 0 {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d series have no PROBLEM event, e.g. seq %v", len(missing), missing[:min(10, len(missing))])
	}
	for id, n := range problems {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected event id %s", id)
		}
		if n != 1 {
			t.Errorf("event %s: %d PROBLEM events, want 1", id, n)
		}
	}
	for k := range counts {
		if k.status != "PROBLEM" || k.currentStep != 1 || k.eventTime != float64(ts) {
			t.Errorf("unexpected event %+v", k)
		}
	}
	// And the list agrees with the stream.
	list := c.listEvents(t, "event:p3")
	if len(list) != total {
		t.Errorf("event:p3 has %d events, want %d", len(list), total)
	}
	seen := map[string]bool{}
	for _, e := range list {
		id, _ := e["id"].(string)
		if seen[id] {
			t.Errorf("event:p3 holds %s twice", id)
		}
		seen[id] = true
		if b, _ := json.Marshal(e["pushedTags"]); !strings.HasPrefix(string(b), `{"seq":"`) {
			t.Errorf("event %s pushedTags = %s, want the series tags", id, b)
		}
	}
}

func get(url string) string {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

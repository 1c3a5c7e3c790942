//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

const alarmRules = `strategies:
  - id: 15
    endpoints: [e2e-host01]
    metric: cpu.idle
    tags: {}
    func: "all(#3)"
    operator: "<"
    rightValue: 5
    maxStep: 3
    priority: 0
    note: cpu idle too low
    tpl: {id: 2, name: sa.base, parentId: 0, actionId: 2, creator: root}
expressions:
  - id: 1
    metric: e2e.load
    tags: {}
    func: "all(#3)"
    operator: ">"
    rightValue: 90
    maxStep: 3
    priority: 2
    note: e2e load too high
    actionId: 7
`

// streamEvent is one kestrel:events entry.
type streamEvent struct {
	fields map[string]any
	event  map[string]any
}

func (c *cluster) streamEvents(t *testing.T) []streamEvent {
	t.Helper()
	msgs, err := c.rdb.XRange(context.Background(), "kestrel:events", "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE kestrel:events: %v", err)
	}
	out := make([]streamEvent, 0, len(msgs))
	for _, m := range msgs {
		var ev map[string]any
		raw, _ := m.Values["event"].(string)
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatalf("stream entry %s: event field is not JSON: %v: %q", m.ID, err, raw)
		}
		out = append(out, streamEvent{fields: m.Values, event: ev})
	}
	return out
}

func (c *cluster) listEvents(t *testing.T, key string) []map[string]any {
	t.Helper()
	raws, err := c.rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatalf("LRANGE %s: %v", key, err)
	}
	var out []map[string]any
	for _, r := range raws {
		var ev map[string]any
		if err := json.Unmarshal([]byte(r), &ev); err != nil {
			t.Fatalf("%s entry is not JSON: %v: %q", key, err, r)
		}
		out = append(out, ev)
	}
	return out
}

// findEvent returns the first event with id and status.
func findEvent(evs []map[string]any, id, status string) map[string]any {
	for _, e := range evs {
		if e["id"] == id && e["status"] == status {
			return e
		}
	}
	return nil
}

// checkKeys checks that m has exactly the keys want, with the given
// values (compared after JSON decoding: numbers are float64).
func checkKeys(t *testing.T, what string, m map[string]any, want map[string]any) {
	t.Helper()
	if len(m) != len(want) {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		t.Errorf("%s has keys %v, want exactly %d keys", what, keys, len(want))
	}
	for k, w := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("%s: key %q missing", what, k)
			continue
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %q = %#v (%T), want %#v (%T)", what, k, got, got, w, w)
		}
	}
}

func TestAlarmEventsInRedis(t *testing.T) {
	c := startCluster(t, clusterSpec{transfers: 2, judges: 2, rules: alarmRules})
	c.waitJudgesInRings(t)
	base := proto.AlignTimestamp(time.Now().Unix(), 60) - 600

	// Expression: three points above 90, one minute apart.
	c.push("[" + mv("e2e-host01", "e2e.load", "", 95, base) + "," + mv("e2e-host01", "e2e.load", "", 96, base+60) + "," +
		mv("e2e-host01", "e2e.load", "", 97.5, base+120) + "]")
	// Strategy: cpu.idle below 5 three times.
	c.push("[" + mv("e2e-host01", "cpu.idle", "", 1, base) + "," + mv("e2e-host01", "cpu.idle", "", 2, base+60) + "," +
		mv("e2e-host01", "cpu.idle", "", 1.2, base+120) + "]")

	exprID := proto.ExpressionEventID(1, "e2e-host01/e2e.load")
	stratID := proto.StrategyEventID(15, "e2e-host01/cpu.idle")
	if !strings.HasPrefix(exprID, "e_1_") || len(exprID) != len("e_1_")+32 {
		t.Fatalf("expression id %q", exprID)
	}
	waitRunning(t, "PROBLEM events in event:p2 and event:p0", 60*time.Second, func() bool {
		return findEvent(c.listEvents(t, "event:p2"), exprID, "PROBLEM") != nil &&
			findEvent(c.listEvents(t, "event:p0"), stratID, "PROBLEM") != nil
	}, c.judges[0], c.transfers[0], c.agent)

	wantExpr := map[string]any{
		"id": exprID, "strategy": nil,
		"expression": map[string]any{"id": 1.0, "metric": "e2e.load", "tags": map[string]any{}, "func": "all(#3)",
			"operator": ">", "rightValue": 90.0, "maxStep": 3.0, "priority": 2.0, "note": "e2e load too high", "actionId": 7.0},
		"status": "PROBLEM", "endpoint": "e2e-host01", "leftValue": 97.5, "currentStep": 1.0,
		"eventTime": float64(base + 120), "pushedTags": map[string]any{},
	}
	wantStrat := map[string]any{
		"id": stratID, "expression": nil,
		"strategy": map[string]any{"id": 15.0, "metric": "cpu.idle", "tags": map[string]any{}, "func": "all(#3)",
			"operator": "<", "rightValue": 5.0, "maxStep": 3.0, "priority": 0.0, "note": "cpu idle too low",
			"tpl": map[string]any{"id": 2.0, "name": "sa.base", "parentId": 0.0, "actionId": 2.0, "creator": "root"}},
		"status": "PROBLEM", "endpoint": "e2e-host01", "leftValue": 1.2, "currentStep": 1.0,
		"eventTime": float64(base + 120), "pushedTags": map[string]any{},
	}
	checkKeys(t, "event:p2 expression event", findEvent(c.listEvents(t, "event:p2"), exprID, "PROBLEM"), wantExpr)
	checkKeys(t, "event:p0 strategy event", findEvent(c.listEvents(t, "event:p0"), stratID, "PROBLEM"), wantStrat)
	if n := len(c.listEvents(t, "event:p2")); n != 1 {
		t.Errorf("event:p2 has %d events, want 1", n)
	}

	// The same events in the stream, with the stream fields.
	checkStream := func(id, status string, prio int, want map[string]any) {
		t.Helper()
		var found *streamEvent
		for _, s := range c.streamEvents(t) {
			if s.fields["id"] == id && s.fields["status"] == status {
				found = &s
				break
			}
		}
		if found == nil {
			t.Fatalf("no %s event %s in kestrel:events", status, id)
		}
		wantFields := map[string]any{"id": id, "status": status, "priority": itoa(prio), "endpoint": "e2e-host01"}
		for k, v := range wantFields {
			if found.fields[k] != v {
				t.Errorf("stream field %s = %#v, want %#v", k, found.fields[k], v)
			}
		}
		if len(found.fields) != 5 {
			t.Errorf("stream entry fields %v, want id status priority endpoint event", found.fields)
		}
		checkKeys(t, "kestrel:events "+id+" "+status, found.event, want)
	}
	checkStream(exprID, "PROBLEM", 2, wantExpr)
	checkStream(stratID, "PROBLEM", 0, wantStrat)

	// Recovery: one point back under the threshold gives OK, step 1.
	c.push("[" + mv("e2e-host01", "e2e.load", "", 10, base+180) + "," + mv("e2e-host01", "cpu.idle", "", 50, base+180) + "]")
	waitRunning(t, "OK events", 60*time.Second, func() bool {
		return findEvent(c.listEvents(t, "event:p2"), exprID, "OK") != nil &&
			findEvent(c.listEvents(t, "event:p0"), stratID, "OK") != nil
	}, c.judges[0], c.transfers[0], c.agent)
	okExpr := clone(wantExpr)
	okExpr["status"], okExpr["leftValue"], okExpr["eventTime"] = "OK", 10.0, float64(base+180)
	okStrat := clone(wantStrat)
	okStrat["status"], okStrat["leftValue"], okStrat["eventTime"] = "OK", 50.0, float64(base+180)
	checkKeys(t, "event:p2 OK event", findEvent(c.listEvents(t, "event:p2"), exprID, "OK"), okExpr)
	checkKeys(t, "event:p0 OK event", findEvent(c.listEvents(t, "event:p0"), stratID, "OK"), okStrat)
	checkStream(exprID, "OK", 2, okExpr)
	checkStream(stratID, "OK", 0, okStrat)

	// LPUSH: newest first.
	p2 := c.listEvents(t, "event:p2")
	if len(p2) != 2 || p2[0]["status"] != "OK" || p2[1]["status"] != "PROBLEM" {
		t.Errorf("event:p2 = %v, want [OK, PROBLEM]", p2)
	}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

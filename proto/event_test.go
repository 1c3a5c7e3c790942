package proto

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The REFERENCE section 6 example, decoded generically, is what a
// strategy event must look like key for key, type for type.
const referenceEvent = `{"id":"s_15_d2a3cf076e6613a23a3a010c6e6d647a",
 "strategy":{"id":15,"metric":"cpu.idle","tags":{},"func":"all(#3)","operator":"<","rightValue":5,
             "maxStep":3,"priority":0,"note":"cpu idle too low",
             "tpl":{"id":2,"name":"sa.base","parentId":0,"actionId":2,"creator":"root"}},
 "expression":null,"status":"PROBLEM","endpoint":"host01","leftValue":1.2,"currentStep":1,
 "eventTime":1431349740,"pushedTags":{}}`

func TestStrategyEventMatchesReference(t *testing.T) {
	e := Event{
		ID: StrategyEventID(15, SeriesKey("host01", "cpu.idle", nil)),
		Strategy: &EventStrategy{ID: 15, Metric: "cpu.idle", Func: "all(#3)", Operator: "<", RightValue: 5,
			MaxStep: 3, Priority: 0, Note: "cpu idle too low",
			Tpl: EventTemplate{ID: 2, Name: "sa.base", ParentID: 0, ActionID: 2, Creator: "root"}},
		Status: StatusProblem, Endpoint: "host01", LeftValue: 1.2, CurrentStep: 1, EventTime: 1431349740,
	}
	b, err := MarshalEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(referenceEvent), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("event JSON\n got  %s\n want %s", b, referenceEvent)
	}
	if e.Priority() != 0 || e.Metric() != "cpu.idle" {
		t.Errorf("Priority/Metric accessors: %d %q", e.Priority(), e.Metric())
	}
}

func TestExpressionEventShape(t *testing.T) {
	e := Event{
		ID:         ExpressionEventID(1, "h/demo.load/a=1"),
		Expression: &EventExpression{ID: 1, Metric: "demo.load", Func: "all(#3)", Operator: ">", RightValue: 90, MaxStep: 3, Note: "demo load too high", ActionID: 1},
		Status:     StatusOK, Endpoint: "h", LeftValue: 10, CurrentStep: 1, EventTime: 60,
		PushedTags: map[string]string{"a": "1"},
	}
	b, err := MarshalEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := []string{"id", "strategy", "expression", "status", "endpoint", "leftValue", "currentStep", "eventTime", "pushedTags"}
	if len(m) != len(keys) {
		t.Errorf("event has %d keys, want %d: %s", len(m), len(keys), b)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing: %s", k, b)
		}
	}
	if m["strategy"] != nil {
		t.Errorf("strategy must be null in an expression event")
	}
	x := m["expression"].(map[string]any)
	exKeys := []string{"id", "metric", "tags", "func", "operator", "rightValue", "maxStep", "priority", "note", "actionId"}
	if len(x) != len(exKeys) {
		t.Errorf("expression has %d keys, want %d", len(x), len(exKeys))
	}
	if tags, ok := x["tags"].(map[string]any); !ok || len(tags) != 0 {
		t.Errorf("expression tags must be {} , got %#v", x["tags"])
	}
	if pt := m["pushedTags"].(map[string]any); pt["a"] != "1" {
		t.Errorf("pushedTags %#v", pt)
	}
	if _, err := MarshalEvent(&Event{ID: "x"}); err == nil {
		t.Errorf("an event with neither strategy nor expression must not marshal")
	}
}

func TestEventListKey(t *testing.T) {
	if got := EventListKey("", 3); got != "event:p3" {
		t.Errorf("default list key %q", got)
	}
	if got := EventListKey("alarms:p%d", 0); got != "alarms:p0" {
		t.Errorf("custom list key %q", got)
	}
}

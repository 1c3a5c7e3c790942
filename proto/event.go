package proto

import (
	"encoding/json"
	"fmt"
)

// Alarm event statuses.
const (
	StatusProblem = "PROBLEM"
	StatusOK      = "OK"
)

// Event is Open-Falcon's alarm event, exactly as its judge writes it to
// event:p<priority>: the same keys, types and values, so Open-Falcon's
// alarm module decodes it with its own types. A strategy event has
// Expression nil (JSON null), an expression event Strategy nil.
type Event struct {
	ID          string            `json:"id"`
	Strategy    *EventStrategy    `json:"strategy"`
	Expression  *EventExpression  `json:"expression"`
	Status      string            `json:"status"`
	Endpoint    string            `json:"endpoint"`
	LeftValue   float64           `json:"leftValue"`
	CurrentStep int               `json:"currentStep"`
	EventTime   int64             `json:"eventTime"`
	PushedTags  map[string]string `json:"pushedTags"`
}

// EventStrategy is the strategy object of an event.
type EventStrategy struct {
	ID         int               `json:"id"`
	Metric     string            `json:"metric"`
	Tags       map[string]string `json:"tags"`
	Func       string            `json:"func"`
	Operator   string            `json:"operator"`
	RightValue float64           `json:"rightValue"`
	MaxStep    int               `json:"maxStep"`
	Priority   int               `json:"priority"`
	Note       string            `json:"note"`
	Tpl        EventTemplate     `json:"tpl"` // never null: Open-Falcon's alarm reads tpl.actionId
}

// EventTemplate is the template a strategy belongs to (zero values when
// the rule has none).
type EventTemplate struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	ParentID int    `json:"parentId"`
	ActionID int    `json:"actionId"`
	Creator  string `json:"creator"`
}

// EventExpression is the expression object of an event.
type EventExpression struct {
	ID         int               `json:"id"`
	Metric     string            `json:"metric"`
	Tags       map[string]string `json:"tags"`
	Func       string            `json:"func"`
	Operator   string            `json:"operator"`
	RightValue float64           `json:"rightValue"`
	MaxStep    int               `json:"maxStep"`
	Priority   int               `json:"priority"`
	Note       string            `json:"note"`
	ActionID   int               `json:"actionId"`
}

// Priority returns the event's priority (from its strategy or expression).
func (e *Event) Priority() int {
	switch {
	case e.Strategy != nil:
		return e.Strategy.Priority
	case e.Expression != nil:
		return e.Expression.Priority
	}
	return 0
}

// Metric returns the metric of the event's rule.
func (e *Event) Metric() string {
	switch {
	case e.Strategy != nil:
		return e.Strategy.Metric
	case e.Expression != nil:
		return e.Expression.Metric
	}
	return ""
}

// MarshalEvent returns the event JSON with every nil map written as {}.
// It uses encoding/json, as Open-Falcon's judge does.
func MarshalEvent(e *Event) ([]byte, error) {
	c := *e
	if c.PushedTags == nil {
		c.PushedTags = map[string]string{}
	}
	if c.Strategy != nil {
		s := *c.Strategy
		if s.Tags == nil {
			s.Tags = map[string]string{}
		}
		c.Strategy = &s
	}
	if c.Expression != nil {
		x := *c.Expression
		if x.Tags == nil {
			x.Tags = map[string]string{}
		}
		c.Expression = &x
	}
	if (c.Strategy == nil) == (c.Expression == nil) {
		return nil, fmt.Errorf("event %s: exactly one of strategy and expression must be set", e.ID)
	}
	return json.Marshal(&c)
}

// EventListKey returns Open-Falcon's list for a priority, "event:p<N>",
// under a configurable format (default "event:p%d").
func EventListKey(format string, priority int) string {
	if format == "" {
		format = "event:p%d"
	}
	return fmt.Sprintf(format, priority)
}

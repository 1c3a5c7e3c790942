package proto

import (
	"math"
)

// Reason says why a point was rejected. The set is closed: transfer and the
// agent count rejections with the reason's String as a metric label.
type Reason uint8

// Rejection reasons, in the order the checks run (Open-Falcon's order, with
// Kestrel's stricter checks placed next to the rule they tighten).
const (
	OK                 Reason = iota
	ReasonNil                 // the item is JSON null
	ReasonBadJSON             // the item is not a MetricValue object (wrong field types)
	ReasonHostname            // metric "kernel.hostname" (Open-Falcon refuses it)
	ReasonNoMetric            // empty metric
	ReasonNoEndpoint          // empty endpoint
	ReasonCounterType         // counterType not GAUGE, COUNTER or DERIVE
	ReasonNoValue             // value missing or empty
	ReasonBadStep             // step <= 0
	ReasonTooLong             // len(metric)+len(tags) > 510
	ReasonTooManyTags         // more than MaxTags tags
	ReasonTagsUnsorted        // binary point whose tags are not sorted by unique key
	ReasonEndpointLong        // endpoint longer than MaxEndpointLen bytes
	ReasonFuture              // timestamp more than MaxFuture seconds ahead
	ReasonBadValue            // value not a number or numeric string
	ReasonNotFinite           // value NaN or ±Inf
	numReasons
)

var reasonNames = [...]string{
	OK:                 "ok",
	ReasonNil:          "nil",
	ReasonBadJSON:      "bad_json",
	ReasonHostname:     "kernel_hostname",
	ReasonNoMetric:     "empty_metric",
	ReasonNoEndpoint:   "empty_endpoint",
	ReasonCounterType:  "bad_counter_type",
	ReasonNoValue:      "empty_value",
	ReasonBadStep:      "bad_step",
	ReasonTooLong:      "metric_tags_too_long",
	ReasonTooManyTags:  "too_many_tags",
	ReasonTagsUnsorted: "tags_unsorted",
	ReasonEndpointLong: "endpoint_too_long",
	ReasonFuture:       "future_timestamp",
	ReasonBadValue:     "bad_value",
	ReasonNotFinite:    "value_not_finite",
}

var reasonTexts = [...]string{
	OK:                 "ok",
	ReasonNil:          "item is null",
	ReasonBadJSON:      "item is not a MetricValue object",
	ReasonHostname:     "metric kernel.hostname is not accepted",
	ReasonNoMetric:     "metric is empty",
	ReasonNoEndpoint:   "endpoint is empty",
	ReasonCounterType:  "counterType must be GAUGE, COUNTER or DERIVE",
	ReasonNoValue:      "value is missing",
	ReasonBadStep:      "step must be > 0",
	ReasonTooLong:      "metric and tags together exceed 510 bytes",
	ReasonTooManyTags:  "more than 32 tags",
	ReasonTagsUnsorted: "tags are not sorted by unique key",
	ReasonEndpointLong: "endpoint exceeds 255 bytes",
	ReasonFuture:       "timestamp is more than 10 minutes in the future",
	ReasonBadValue:     "value is not a number or numeric string",
	ReasonNotFinite:    "value is NaN or infinite",
}

// Limits of a valid point.
const (
	MaxMetricTagsLen = 510 // Open-Falcon: len(metric)+len(tags)
	MaxTags          = 32
	MaxEndpointLen   = 255
	MaxFuture        = 600 // seconds
)

// String returns the reason's metric label (snake_case).
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Text returns a sentence for replies and logs.
func (r Reason) Text() string {
	if int(r) < len(reasonTexts) {
		return reasonTexts[r]
	}
	return "unknown reason"
}

// Reasons lists every rejection reason (OK excluded), for pre-creating
// metric label values.
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ReasonNil; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// ValidatePoint checks a decoded point (from a binary batch) at wall time
// now (unix seconds). A timestamp <= 0 is replaced by now, as Open-Falcon
// does. It returns OK or the first failing reason.
func ValidatePoint(p *Point, now int64) Reason {
	switch {
	case p.Metric == "kernel.hostname":
		return ReasonHostname
	case p.Metric == "":
		return ReasonNoMetric
	case p.Endpoint == "":
		return ReasonNoEndpoint
	case p.Type > Derive:
		return ReasonCounterType
	case p.Step <= 0:
		return ReasonBadStep
	case len(p.Metric)+TagsLen(p.Tags) > MaxMetricTagsLen:
		return ReasonTooLong
	case len(p.Tags) > MaxTags:
		return ReasonTooManyTags
	case len(p.Endpoint) > MaxEndpointLen:
		return ReasonEndpointLong
	}
	for i := 1; i < len(p.Tags); i++ {
		if p.Tags[i-1].Key >= p.Tags[i].Key {
			return ReasonTagsUnsorted
		}
	}
	if p.Timestamp <= 0 {
		p.Timestamp = now
	} else if p.Timestamp > now+MaxFuture {
		return ReasonFuture
	}
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return ReasonNotFinite
	}
	return OK
}

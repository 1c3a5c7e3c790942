package proto

import (
	"math"
)

// Reason says why a point was rejected. The set is closed: transfer and the
// agent count rejections with the reason's String as a metric label.
type Reason uint8

// Rejection reasons, in the order the checks run (Open-Falcon's order, with
// Kestrel's stricter checks placed next to the rule they tighten). A
// control character is C0 (NUL, tab, newline, ...), DEL or C1
// (unicode.IsControl); Open-Falcon accepts them and they corrupt series
// keys, logs and Redis keys downstream.
const (
	OK                    Reason = iota
	ReasonNil                    // the item is JSON null
	ReasonBadJSON                // the item is not a MetricValue object (wrong field types)
	ReasonHostname               // metric "kernel.hostname" (Open-Falcon refuses it)
	ReasonNoMetric               // empty metric
	ReasonMetricControl          // metric holds a control character (Kestrel)
	ReasonNoEndpoint             // empty endpoint
	ReasonEndpointControl        // endpoint holds a control character (Kestrel)
	ReasonCounterType            // counterType not GAUGE, COUNTER or DERIVE
	ReasonNoValue                // value missing or empty
	ReasonBadStep                // step <= 0
	ReasonTooLong                // len(metric)+len(tags) > 510
	ReasonTooManyTags            // more than MaxTags tags
	ReasonTagsUnsorted           // binary point whose tags are not sorted by unique key
	ReasonTagEmptyKey            // a tag with an empty key, e.g. tags "novalue,=x" (Kestrel)
	ReasonTagControl             // a tag key or value holds a control character (Kestrel)
	ReasonEndpointLong           // endpoint longer than MaxEndpointLen bytes
	ReasonFuture                 // timestamp more than MaxFuture seconds ahead
	ReasonBadValue               // value not a number or numeric string
	ReasonNotFinite              // value NaN or ±Inf
	numReasons
)

var reasonNames = [...]string{
	OK:                    "ok",
	ReasonNil:             "nil",
	ReasonBadJSON:         "bad_json",
	ReasonHostname:        "kernel_hostname",
	ReasonNoMetric:        "empty_metric",
	ReasonMetricControl:   "metric_control_char",
	ReasonNoEndpoint:      "empty_endpoint",
	ReasonEndpointControl: "endpoint_control_char",
	ReasonCounterType:     "bad_counter_type",
	ReasonNoValue:         "empty_value",
	ReasonBadStep:         "bad_step",
	ReasonTooLong:         "metric_tags_too_long",
	ReasonTooManyTags:     "too_many_tags",
	ReasonTagsUnsorted:    "tags_unsorted",
	ReasonTagEmptyKey:     "empty_tag_key",
	ReasonTagControl:      "tag_control_char",
	ReasonEndpointLong:    "endpoint_too_long",
	ReasonFuture:          "future_timestamp",
	ReasonBadValue:        "bad_value",
	ReasonNotFinite:       "value_not_finite",
}

var reasonTexts = [...]string{
	OK:                    "ok",
	ReasonNil:             "item is null",
	ReasonBadJSON:         "item is not a MetricValue object",
	ReasonHostname:        "metric kernel.hostname is not accepted",
	ReasonNoMetric:        "metric is empty",
	ReasonMetricControl:   "metric contains a control character",
	ReasonNoEndpoint:      "endpoint is empty",
	ReasonEndpointControl: "endpoint contains a control character",
	ReasonCounterType:     "counterType must be GAUGE, COUNTER or DERIVE",
	ReasonNoValue:         "value is missing",
	ReasonBadStep:         "step must be > 0",
	ReasonTooLong:         "metric and tags together exceed 510 bytes",
	ReasonTooManyTags:     "more than 32 tags",
	ReasonTagsUnsorted:    "tags are not sorted by unique key",
	ReasonTagEmptyKey:     "a tag has an empty key",
	ReasonTagControl:      "a tag contains a control character",
	ReasonEndpointLong:    "endpoint exceeds 255 bytes",
	ReasonFuture:          "timestamp is more than 10 minutes in the future",
	ReasonBadValue:        "value is not a number or numeric string",
	ReasonNotFinite:       "value is NaN or infinite",
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
// now (unix seconds), in the order of the Reason constants. A timestamp <= 0
// is replaced by now, as Open-Falcon does. It returns OK or the first
// failing reason.
func ValidatePoint(p *Point, now int64) Reason {
	switch {
	case p.Metric == "kernel.hostname":
		return ReasonHostname
	case p.Metric == "":
		return ReasonNoMetric
	case hasControl(p.Metric):
		return ReasonMetricControl
	case p.Endpoint == "":
		return ReasonNoEndpoint
	case hasControl(p.Endpoint):
		return ReasonEndpointControl
	case p.Type > Derive:
		return ReasonCounterType
	case p.Step <= 0:
		return ReasonBadStep
	case len(p.Metric)+TagsLen(p.Tags) > MaxMetricTagsLen:
		return ReasonTooLong
	case len(p.Tags) > MaxTags:
		return ReasonTooManyTags
	}
	for i := 1; i < len(p.Tags); i++ {
		if p.Tags[i-1].Key >= p.Tags[i].Key {
			return ReasonTagsUnsorted
		}
	}
	if r := checkTags(p.Tags); r != OK {
		return r
	}
	if len(p.Endpoint) > MaxEndpointLen {
		return ReasonEndpointLong
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

// checkTags returns ReasonTagEmptyKey when a tag has an empty key (the
// first such reason wins over a control character anywhere), else
// ReasonTagControl when a key or value holds a control character, else OK.
func checkTags(tags []Tag) Reason {
	for i := range tags {
		if tags[i].Key == "" {
			return ReasonTagEmptyKey
		}
	}
	for i := range tags {
		if hasControl(tags[i].Key) || hasControl(tags[i].Value) {
			return ReasonTagControl
		}
	}
	return OK
}

// hasControl reports whether s holds a control character: C0 (U+0000 to
// U+001F, NUL, tab and newline included), DEL (U+007F) or C1 (U+0080 to
// U+009F, in UTF-8 0xC2 0x80..0x9F; 0xC2 is never a continuation byte).
// It is unicode.IsControl over the runes of s, without decoding them: eight
// bytes at a time look for a byte < 0x20, 0x7F or 0xC2, and only a word
// with one of those is looked at byte by byte.
func hasControl(s string) bool {
	n := len(s)
	if n < 8 {
		return hasControlBytes(s)
	}
	// Whole words, the last one overlapping the one before when n is not
	// a multiple of 8.
	for i := 0; ; i += 8 {
		if i > n-8 {
			i = n - 8
		}
		if controlWord(load64(s, i)) {
			return hasControlBytes(s)
		}
		if i == n-8 {
			return false
		}
	}
}

// controlWord reports whether a byte of x is < 0x20, 0x7F or 0xC2 (then
// the caller looks byte by byte; a C1 control starts with 0xC2).
func controlWord(x uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	less := (x - 0x20*ones) & ^x & high // a byte < 0x20
	del := x ^ 0x7f*ones                // a zero byte where x had 0x7F
	c2 := x ^ 0xc2*ones                 // a zero byte where x had 0xC2
	return less|((del-ones)&^del&high)|((c2-ones)&^c2&high) != 0
}

func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func hasControlBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return true
		}
		if c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f {
			return true
		}
	}
	return false
}

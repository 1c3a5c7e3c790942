package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MetricValue is Open-Falcon's pushed point, exactly as it appears in JSON
// at the edges (agent /v1/push, transfer /api/push and JSON-RPC). Value is
// kept raw: Open-Falcon accepts a number or a numeric string.
type MetricValue struct {
	Endpoint    string          `json:"endpoint"`
	Metric      string          `json:"metric"`
	Value       json.RawMessage `json:"value"`
	Step        int64           `json:"step"`
	CounterType string          `json:"counterType"`
	Tags        string          `json:"tags"`
	Timestamp   int64           `json:"timestamp"`
}

// ItemError is one rejected item of a JSON push body.
type ItemError struct {
	Index  int    // position in the array
	Reason Reason // why it was rejected
	Detail string // extra detail, may be empty
}

func (e ItemError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("item %d: %s: %s", e.Index, e.Reason.Text(), e.Detail)
	}
	return fmt.Sprintf("item %d: %s", e.Index, e.Reason.Text())
}

// ErrNotArray is returned when a push body is not a JSON array.
var ErrNotArray = errors.New("body is not a JSON array of MetricValue objects")

// DecodeMetricValues decodes a push body: a JSON array of MetricValue
// objects. A malformed body (not JSON, not an array) is an error; each item
// is decoded on its own, so one item of the wrong shape is reported in
// bad (ReasonNil or ReasonBadJSON) and never spoils its neighbours. The
// position of each good item in the body is in idx.
func DecodeMetricValues(body []byte) (items []MetricValue, idx []int, bad []ItemError, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil, nil, errors.New("body is empty")
	}
	if body[0] != '[' {
		return nil, nil, nil, ErrNotArray
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, nil, nil, fmt.Errorf("body is not valid JSON: %w", err)
	}
	items = make([]MetricValue, 0, len(raws))
	idx = make([]int, 0, len(raws))
	for i, raw := range raws {
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			bad = append(bad, ItemError{Index: i, Reason: ReasonNil})
			continue
		}
		var mv MetricValue
		if err := json.Unmarshal(raw, &mv); err != nil {
			bad = append(bad, ItemError{Index: i, Reason: ReasonBadJSON, Detail: err.Error()})
			continue
		}
		items = append(items, mv)
		idx = append(idx, i)
	}
	return items, idx, bad, nil
}

// ParseValue parses a raw JSON value: a number, or a string holding a
// number. It returns ReasonNoValue for a missing or empty value and
// ReasonBadValue for anything else that is not numeric (bool, null, object).
func ParseValue(raw json.RawMessage) (float64, Reason) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == `""` {
		return 0, ReasonNoValue
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, ReasonBadValue
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return 0, ReasonNoValue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			// ParseFloat rejects out of range values with a usable ±Inf;
			// treat those as not finite, everything else as not numeric.
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return v, ReasonNotFinite
			}
			return 0, ReasonBadValue
		}
		return v, OK
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return v, ReasonNotFinite
			}
			return 0, ReasonBadValue
		}
		return v, OK
	}
	return 0, ReasonBadValue
}

// ToPoint validates mv at wall time now (unix seconds) in Open-Falcon's
// order with Kestrel's stricter checks, and converts it to a Point. The
// timestamp is not aligned here (transfer aligns after raising the step).
func (mv *MetricValue) ToPoint(now int64) (Point, Reason) {
	switch {
	case mv.Metric == "kernel.hostname":
		return Point{}, ReasonHostname
	case mv.Metric == "":
		return Point{}, ReasonNoMetric
	case hasControl(mv.Metric):
		return Point{}, ReasonMetricControl
	case mv.Endpoint == "":
		return Point{}, ReasonNoEndpoint
	case hasControl(mv.Endpoint):
		return Point{}, ReasonEndpointControl
	}
	ct, ok := ParseCounterType(mv.CounterType)
	if !ok {
		return Point{}, ReasonCounterType
	}
	if r := valuePresent(mv.Value); r != OK {
		return Point{}, r
	}
	if mv.Step <= 0 || mv.Step > 1<<31-1 {
		return Point{}, ReasonBadStep
	}
	tags := ParseTags(mv.Tags)
	if len(mv.Metric)+len(mv.Tags) > MaxMetricTagsLen {
		return Point{}, ReasonTooLong
	}
	if len(tags) > MaxTags {
		return Point{}, ReasonTooManyTags
	}
	for i := range tags {
		if tags[i].Key == "" {
			return Point{}, ReasonTagEmptyKey
		}
	}
	if hasControl(mv.Tags) { // also in a part without "=", which is dropped
		return Point{}, ReasonTagControl
	}
	if len(mv.Endpoint) > MaxEndpointLen {
		return Point{}, ReasonEndpointLong
	}
	ts := mv.Timestamp
	if ts <= 0 {
		ts = now
	} else if ts > now+MaxFuture {
		return Point{}, ReasonFuture
	}
	v, r := ParseValue(mv.Value)
	if r != OK {
		return Point{}, r
	}
	if v != v || v > maxFloat || v < -maxFloat {
		return Point{}, ReasonNotFinite
	}
	return Point{
		Endpoint:  mv.Endpoint,
		Metric:    mv.Metric,
		Tags:      tags,
		Value:     v,
		Timestamp: ts,
		Type:      ct,
		Step:      int32(mv.Step),
	}, OK
}

const maxFloat = 1.7976931348623157e308

// valuePresent is Open-Falcon's "empty value" check: missing, JSON null
// handled as not numeric later, and "" as empty.
func valuePresent(raw json.RawMessage) Reason {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == `""` {
		return ReasonNoValue
	}
	return OK
}

// FromPoint returns the Open-Falcon JSON form of p.
func FromPoint(p *Point) MetricValue {
	return MetricValue{
		Endpoint:    p.Endpoint,
		Metric:      p.Metric,
		Value:       json.RawMessage(strconv.AppendFloat(nil, p.Value, 'g', -1, 64)),
		Step:        int64(p.Step),
		CounterType: p.Type.String(),
		Tags:        FormatTags(p.Tags),
		Timestamp:   p.Timestamp,
	}
}

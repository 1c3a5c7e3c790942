package push

import (
	"bytes"
	"cmp"
	"errors"
	"slices"

	"github.com/kestrel-mon/kestrel/proto"
)

// Rejection is one pushed item that was not accepted.
type Rejection struct {
	Index  int    `json:"index"`  // position in the pushed array
	Reason string `json:"reason"` // proto.Reason label, e.g. "bad_value"
	Error  string `json:"error"`  // e.g. "item 1: value is not a number or numeric string"
	reason proto.Reason
}

// BadRequest says why a push was refused as a whole with 400. Its String
// is the reason label of kestrel_agent_push_requests_total{code="400"}.
type BadRequest uint8

// Request-level 400 reasons (per-item reasons are proto.Reason).
const (
	BadEmptyBody    BadRequest = iota + 1 // the body is empty or white space
	BadNotJSON                            // the body is not valid JSON
	BadNotArray                           // JSON, but not an array
	BadEmptyArray                         // an empty array
	BadNoValidPoint                       // every item was rejected
	BadRead                               // the body could not be read (the client still there)
	numBadRequests
)

var badRequestNames = [...]string{
	BadEmptyBody:    "empty_body",
	BadNotJSON:      "not_json",
	BadNotArray:     "not_array",
	BadEmptyArray:   "empty_array",
	BadNoValidPoint: "no_valid_point",
	BadRead:         "read_error",
}

func (b BadRequest) String() string {
	if b > 0 && int(b) < len(badRequestNames) {
		return badRequestNames[b]
	}
	return "unknown"
}

// badRequestReasons lists every BadRequest, for pre-creating label values.
func badRequestReasons() []BadRequest {
	out := make([]BadRequest, 0, numBadRequests-1)
	for b := BadEmptyBody; b < numBadRequests; b++ {
		out = append(out, b)
	}
	return out
}

// BodyError is a push body that is unusable as a whole.
type BodyError struct {
	Reason BadRequest
	Err    error
}

func (e *BodyError) Error() string { return e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// Defaults filled into a pushed item before it is validated.
type Defaults struct {
	Endpoint string // the agent's hostname
	Step     int32  // the agent's step
}

// Decode parses an Open-Falcon push body (a JSON array of MetricValue),
// fills the agent's defaults into every item and validates it at wall time
// now. Filled: empty or missing endpoint → d.Endpoint; step 0 or missing →
// d.Step; empty or missing counterType → GAUGE; timestamp 0 or missing (or
// negative) → now. err is a *BodyError when the body itself is unusable
// (empty, not JSON, not an array); otherwise every item is either in points
// or in rejected, which are both in body order.
func Decode(body []byte, d Defaults, now int64) (points []proto.Point, rejected []Rejection, err error) {
	items, idx, bad, err := proto.DecodeMetricValues(body)
	if err != nil {
		why := BadNotJSON
		switch {
		case len(bytes.TrimSpace(body)) == 0:
			why = BadEmptyBody
		case errors.Is(err, proto.ErrNotArray):
			why = BadNotArray
		}
		return nil, nil, &BodyError{Reason: why, Err: err}
	}
	for _, e := range bad {
		rejected = append(rejected, Rejection{Index: e.Index, Reason: e.Reason.String(), Error: e.Error(), reason: e.Reason})
	}
	points = make([]proto.Point, 0, len(items))
	for i := range items {
		mv := &items[i]
		if mv.Endpoint == "" {
			mv.Endpoint = d.Endpoint
		}
		if mv.Step == 0 {
			mv.Step = int64(d.Step)
		}
		if mv.CounterType == "" {
			mv.CounterType = proto.Gauge.String()
		}
		p, r := mv.ToPoint(now)
		if r != proto.OK {
			e := proto.ItemError{Index: idx[i], Reason: r}
			rejected = append(rejected, Rejection{Index: idx[i], Reason: r.String(), Error: e.Error(), reason: r})
			continue
		}
		points = append(points, p)
	}
	if len(bad) > 0 && len(rejected) > len(bad) {
		sortByIndex(rejected)
	}
	return points, rejected, nil
}

// sortByIndex orders rejections by item position.
func sortByIndex(r []Rejection) {
	slices.SortStableFunc(r, func(a, b Rejection) int { return cmp.Compare(a.Index, b.Index) })
}

package push

import (
	"cmp"
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

// Defaults filled into a pushed item before it is validated.
type Defaults struct {
	Endpoint string // the agent's hostname
	Step     int32  // the agent's step
}

// Decode parses an Open-Falcon push body (a JSON array of MetricValue),
// fills the agent's defaults into every item and validates it at wall time
// now. Filled: empty or missing endpoint → d.Endpoint; step 0 or missing →
// d.Step; empty or missing counterType → GAUGE; timestamp 0 or missing (or
// negative) → now. err is set when the body itself is unusable (empty,
// not JSON, not an array); otherwise every item is either in points or in
// rejected, which are both in body order.
func Decode(body []byte, d Defaults, now int64) (points []proto.Point, rejected []Rejection, err error) {
	items, idx, bad, err := proto.DecodeMetricValues(body)
	if err != nil {
		return nil, nil, err
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

package proto

import (
	"fmt"
	"sort"
)

// CounterType says how a series is judged: GAUGE as is, COUNTER and DERIVE
// as per-second rates between consecutive points.
type CounterType uint8

// The three Open-Falcon counter types.
const (
	Gauge CounterType = iota
	Counter
	Derive
)

var counterTypeNames = [...]string{Gauge: "GAUGE", Counter: "COUNTER", Derive: "DERIVE"}

// String returns the Open-Falcon name (GAUGE, COUNTER or DERIVE).
func (c CounterType) String() string {
	if int(c) < len(counterTypeNames) {
		return counterTypeNames[c]
	}
	return fmt.Sprintf("CounterType(%d)", uint8(c))
}

// IsRate reports whether the series is judged on rates.
func (c CounterType) IsRate() bool { return c == Counter || c == Derive }

// ParseCounterType parses the exact, case-sensitive Open-Falcon name.
func ParseCounterType(s string) (CounterType, bool) {
	switch s {
	case "GAUGE":
		return Gauge, true
	case "COUNTER":
		return Counter, true
	case "DERIVE":
		return Derive, true
	}
	return 0, false
}

// Tag is one key/value pair of a series.
type Tag struct {
	Key   string
	Value string
}

// Point is one OpenTSDB-shaped, Open-Falcon compatible sample. Tags are
// sorted by key with unique keys (see SortTags).
type Point struct {
	Endpoint  string
	Metric    string
	Tags      []Tag
	Value     float64
	Timestamp int64 // unix seconds
	Type      CounterType
	Step      int32 // seconds
}

// SortTags sorts tags by key in place and removes repeated keys, keeping
// the last occurrence of each key (Open-Falcon's "last wins"). It returns
// the shortened slice.
func SortTags(tags []Tag) []Tag {
	if len(tags) < 2 {
		return tags
	}
	// Stable sort keeps input order among equal keys, so the last one of a
	// run is the one given last.
	sorted := true
	for i := 1; i < len(tags); i++ {
		if tags[i-1].Key >= tags[i].Key {
			sorted = false
			break
		}
	}
	if sorted {
		return tags
	}
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	out := tags[:0]
	for i := 0; i < len(tags); i++ {
		if i+1 < len(tags) && tags[i+1].Key == tags[i].Key {
			continue
		}
		out = append(out, tags[i])
	}
	return out
}

// TagsFromMap returns the tags of m sorted by key.
func TagsFromMap(m map[string]string) []Tag {
	if len(m) == 0 {
		return nil
	}
	tags := make([]Tag, 0, len(m))
	for k, v := range m {
		tags = append(tags, Tag{Key: k, Value: v})
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	return tags
}

// TagsMap returns tags as a map; never nil, so it marshals as {}.
func TagsMap(tags []Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// AlignTimestamp returns ts aligned down to a multiple of step
// (Open-Falcon's ts - ts%step). A step <= 0 leaves ts unchanged.
func AlignTimestamp(ts int64, step int32) int64 {
	if step <= 0 {
		return ts
	}
	return ts - ts%int64(step)
}

package proto

import (
	"errors"
	"strconv"
	"strings"
	"unsafe"
)

// The validation of MVDecoder: ToPoint's, without allocating.

// neutralValue passes every check of ToPoint on the value.
var neutralValue = []byte("0")

// point validates an item exactly as ToPoint does and converts it. ToPoint
// itself runs the checks that do not allocate, on the item with no tags
// and a neutral value; the checks on tags and value, which ToPoint does
// with allocating helpers (ParseTags, ParseValue), are done here in their
// places of ToPoint's order:
//
//	hostname, metric, endpoint, counterType  ToPoint
//	value missing or ""                      here
//	step                                     ToPoint
//	metric+tags length, tag count, tag keys,
//	tag control characters                   here
//	endpoint length, future timestamp        ToPoint
//	value not numeric, not finite            here
func (d *MVDecoder) point(b []byte, it *item, now int64) (Point, Reason) {
	mv := MetricValue{Endpoint: d.str(b, it.endpoint), Metric: d.str(b, it.metric), CounterType: d.str(b, it.counterType),
		Step: it.step, Timestamp: it.timestamp, Value: neutralValue}
	p, r := mv.ToPoint(now)
	p.Endpoint, p.Metric = mv.Endpoint, mv.Metric // also when rejected, for logs
	if r != OK && r < ReasonNoValue {
		return p, r
	}
	if v := it.value; v.kind == 0 || v.kind == '"' && v.end-v.start == 2 {
		return p, ReasonNoValue
	}
	if r == ReasonBadStep {
		return p, r
	}
	tags, tr := d.parseTags(b, it.tags, len(mv.Metric))
	if tr != OK {
		return p, tr
	}
	if r != OK {
		return p, r
	}
	v, r := d.value(b, it.value)
	if r == OK && (v != v || v > maxFloat || v < -maxFloat) {
		r = ReasonNotFinite
	}
	p.Tags, p.Value = tags, v
	return p, r
}

// str returns the string s decoded into the arena.
func (d *MVDecoder) str(b []byte, s span) string {
	if s.kind == 0 {
		return ""
	}
	off := len(d.arena)
	d.arena = appendString(d.arena, b[s.start:s.end], s.flags)
	return d.arenaString(off)
}

func (d *MVDecoder) arenaString(off int) string {
	if len(d.arena) == off {
		return ""
	}
	// The arena is only appended to until the next Decode; when append
	// moves it, strings made before keep the old array alive, unchanged.
	return unsafe.String(&d.arena[off], len(d.arena)-off)
}

// parseTags runs ToPoint's checks on the tags string (ParseTags without
// allocating: the tags are kept in d.tags, their strings in the arena).
func (d *MVDecoder) parseTags(b []byte, s span, metricLen int) ([]Tag, Reason) {
	raw := d.str(b, s)
	if metricLen+len(raw) > MaxMetricTagsLen {
		return nil, ReasonTooLong
	}
	if raw == "" {
		return nil, OK
	}
	ctl := hasControl(raw)
	if strings.IndexByte(raw, ' ') >= 0 {
		off := len(d.arena)
		for k := 0; k < len(raw); k++ {
			if raw[k] != ' ' {
				d.arena = append(d.arena, raw[k])
			}
		}
		raw = d.arenaString(off)
	}
	first := len(d.tags)
	for rest := raw; rest != ""; {
		part := rest
		if k := strings.IndexByte(rest, ','); k >= 0 {
			part, rest = rest[:k], rest[k+1:]
		} else {
			rest = ""
		}
		if k := strings.IndexByte(part, '='); k >= 0 {
			d.tags = append(d.tags, Tag{Key: part[:k], Value: part[k+1:]})
		}
	}
	tags := d.tags[first:len(d.tags):len(d.tags)]
	// Insertion sort is stable and does not allocate (sort.SliceStable
	// does); SortTags then only has work left with repeated keys.
	for k := 1; k < len(tags); k++ {
		for j := k; j > 0 && tags[j].Key < tags[j-1].Key; j-- {
			tags[j], tags[j-1] = tags[j-1], tags[j]
		}
	}
	tags = SortTags(tags)
	d.tags = d.tags[:first+len(tags)]
	if len(tags) == 0 {
		tags = nil
	}
	switch {
	case len(tags) > MaxTags:
		return nil, ReasonTooManyTags
	case hasEmptyKey(tags):
		return nil, ReasonTagEmptyKey
	case ctl:
		return nil, ReasonTagControl
	}
	return tags, OK
}

func hasEmptyKey(tags []Tag) bool {
	for i := range tags {
		if tags[i].Key == "" {
			return true
		}
	}
	return false
}

// value is ParseValue without allocating.
func (d *MVDecoder) value(b []byte, v span) (float64, Reason) {
	var s string
	switch {
	case v.kind == '-' || '0' <= v.kind && v.kind <= '9':
		s = unsafe.String(&b[v.start], v.end-v.start)
	case v.kind == '"':
		d.text = appendString(d.text[:0], b[v.start:v.end], v.flags)
		if s = strings.TrimSpace(unsafe.String(unsafe.SliceData(d.text), len(d.text))); s == "" {
			return 0, ReasonNoValue
		}
	default:
		return 0, ReasonBadValue
	}
	// Out of range is ±Inf (not finite), any other error not numeric.
	switch f, err := strconv.ParseFloat(s, 64); {
	case err == nil:
		return f, OK
	case errors.Is(err, strconv.ErrRange):
		return f, ReasonNotFinite
	}
	return 0, ReasonBadValue
}

package proto

import (
	"bytes"
	"errors"
	"unsafe"
)

// MVDecoder decodes Open-Falcon push bodies (a JSON array of MetricValue,
// as DecodeMetricValues reads them) and validates each item (as ToPoint
// does) in one pass, without allocating per point once its buffers have
// grown: strings are copied into an arena the decoder reuses. The results
// are exactly those of DecodeMetricValues followed by ToPoint on each
// good item: the same body errors, points, reasons and counts.
//
// The Points of a Result point into the decoder (their strings, their
// tags): they are valid until the next Decode; body may be reused as soon
// as Decode returns. A decoder is not safe for concurrent use.
type MVDecoder struct {
	arena  []byte // the strings of the points of the last Decode
	tags   []Tag
	points []Point
	bad    []MVReject
	key    []byte // an escaped key, decoded
	text   []byte // a string value, decoded
	stack  []byte // containers open while skipping a value
	base   int    // arrays and objects open around the array decoded
}

// MVReject is one rejected item of a push body.
type MVReject struct {
	Index  int    // position in the array
	Reason Reason // why
	// Endpoint and Metric of the item, for logs ("" when it did not
	// decode as a MetricValue); valid as long as the Result.
	Endpoint, Metric string
}

// MVResult is what Decode makes of a body.
type MVResult struct {
	Points   []Point    // the valid items, in body order (timestamp <= 0 replaced by now, not aligned)
	Rejected []MVReject // the invalid ones, in body order
	Total    int        // items in the array: len(Points) + len(Rejected)
}

// ErrEmptyBody is returned for a push body that is empty or white space.
var ErrEmptyBody = errors.New("body is empty")

// Fields of MetricValue, by their JSON names.
const (
	fieldUnknown = iota
	fieldEndpoint
	fieldMetric
	fieldValue
	fieldStep
	fieldCounterType
	fieldTags
	fieldTimestamp
)

var fieldNames = [...]string{fieldEndpoint: "endpoint", fieldMetric: "metric", fieldValue: "value", fieldStep: "step",
	fieldCounterType: "counterType", fieldTags: "tags", fieldTimestamp: "timestamp"}

// field returns the MetricValue field an object key selects.
func field(key []byte) int {
	switch string(key) {
	case "endpoint":
		return fieldEndpoint
	case "metric":
		return fieldMetric
	case "value":
		return fieldValue
	case "step":
		return fieldStep
	case "counterType":
		return fieldCounterType
	case "tags":
		return fieldTags
	case "timestamp":
		return fieldTimestamp
	}
	for f := fieldEndpoint; f < len(fieldNames); f++ {
		if keyIs(key, fieldNames[f]) {
			return f
		}
	}
	return fieldUnknown
}

// span is a JSON value in the body: b[start:end], its first byte kind
// (0: absent) and, for a string, its scan flags.
type span struct {
	start, end int
	kind       byte
	flags      uint8
}

// item is one MetricValue object as read: its strings and value still in
// the body.
type item struct {
	endpoint, metric, counterType, tags, value span
	step, timestamp                            int64
	bad                                        bool // a field of the wrong JSON type
}

// maxKeptBytes bounds the memory a decoder keeps between bodies: after a
// larger body its buffers are dropped.
const maxKeptBytes = 4 << 20

// Decode decodes and validates body at wall time now (unix seconds). An
// error (ErrEmptyBody, ErrNotArray or a *JSONError) means the body is
// unusable as a whole, as DecodeMetricValues says.
func (d *MVDecoder) Decode(body []byte, now int64) (MVResult, error) {
	d.reset()
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return MVResult{}, ErrEmptyBody
	}
	if body[0] != '[' {
		return MVResult{}, ErrNotArray
	}
	i, total, err := d.array(body, 0, now)
	if err == nil {
		if i = skipWS(body, i); i != len(body) {
			err = jsonErr(body, i, "after top-level value")
		}
	}
	if err != nil {
		return MVResult{}, d.fail(err)
	}
	return d.result(total), nil
}

func (d *MVDecoder) result(total int) MVResult {
	return MVResult{Points: d.points, Rejected: d.bad, Total: total}
}

// array decodes the array at b[i], inside d.base open arrays and objects.
func (d *MVDecoder) array(b []byte, i int, now int64) (end, total int, err error) {
	if i = skipWS(b, i+1); i < len(b) && b[i] == ']' {
		return i + 1, 0, nil
	}
	for {
		if i, err = d.item(b, skipWS(b, i), total, now); err != nil {
			return 0, 0, err
		}
		total++
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, total, nil
		}
		return 0, 0, jsonErr(b, i, "after array element")
	}
}

// fail drops what was decoded of a body that turned out unusable.
func (d *MVDecoder) fail(err error) error {
	d.reset()
	return &BodyJSONError{Err: err}
}

// BodyJSONError is a push body that is not valid JSON.
type BodyJSONError struct{ Err error }

func (e *BodyJSONError) Error() string { return "body is not valid JSON: " + e.Err.Error() }
func (e *BodyJSONError) Unwrap() error { return e.Err }

func (d *MVDecoder) reset() {
	if cap(d.arena) > maxKeptBytes || cap(d.points)*int(unsafe.Sizeof(Point{})) > maxKeptBytes {
		*d = MVDecoder{}
		return
	}
	d.arena, d.tags, d.points, d.bad = d.arena[:0], d.tags[:0], d.points[:0], d.bad[:0]
}

// item reads the array element at b[i] (index idx) and adds it to the
// points or the rejected.
func (d *MVDecoder) item(b []byte, i, idx int, now int64) (int, error) {
	if i >= len(b) {
		return 0, jsonErr(b, i, "")
	}
	switch b[i] {
	case '{':
	case 'n':
		end, err := scanLiteral(b, i)
		if err == nil {
			d.bad = append(d.bad, MVReject{Index: idx, Reason: ReasonNil})
		}
		return end, err
	default: // not an object: encoding/json cannot make a MetricValue of it
		end, err := d.skip(b, i, d.base+1)
		if err == nil {
			d.bad = append(d.bad, MVReject{Index: idx, Reason: ReasonBadJSON})
		}
		return end, err
	}
	var it item
	i, err := d.object(b, i, &it)
	if err != nil {
		return 0, err
	}
	if it.bad {
		d.bad = append(d.bad, MVReject{Index: idx, Reason: ReasonBadJSON})
		return i, nil
	}
	p, r := d.point(b, &it, now)
	if r != OK {
		d.bad = append(d.bad, MVReject{Index: idx, Reason: r, Endpoint: p.Endpoint, Metric: p.Metric})
		return i, nil
	}
	d.points = append(d.points, p)
	return i, nil
}

func (d *MVDecoder) skip(b []byte, i, depth int) (int, error) {
	end, stack, err := skipValue(b, i, depth, d.stack)
	d.stack = stack
	return end, err
}

// object reads the object at b[i] into it, as encoding/json would into a
// MetricValue: keys matched as it does, the last of a repeated key wins,
// null leaves a field as it is, a value of the wrong type marks it bad.
func (d *MVDecoder) object(b []byte, i int, it *item) (int, error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, jsonErr(b, i, "looking for beginning of object key string")
		}
		end, flags, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i+1 : end-1]
		if flags != 0 {
			d.key = appendString(d.key[:0], b[i:end], flags)
			key = d.key
		}
		f := field(key)
		if i, err = colon(b, end); err != nil {
			return 0, err
		}
		if i >= len(b) {
			return 0, jsonErr(b, i, "")
		}
		if i, err = d.fieldValue(b, i, f, it); err != nil {
			return 0, err
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		if i >= len(b) || b[i] != ',' {
			return 0, jsonErr(b, i, "after object key:value pair")
		}
		i = skipWS(b, i+1)
	}
}

// fieldValue reads the value at b[i] of field f.
func (d *MVDecoder) fieldValue(b []byte, i, f int, it *item) (int, error) {
	c := b[i]
	switch f {
	case fieldEndpoint, fieldMetric, fieldCounterType, fieldTags:
		if c == '"' {
			end, flags, err := scanString(b, i)
			s := span{start: i, end: end, kind: c, flags: flags}
			switch f {
			case fieldEndpoint:
				it.endpoint = s
			case fieldMetric:
				it.metric = s
			case fieldCounterType:
				it.counterType = s
			default:
				it.tags = s
			}
			return end, err
		}
	case fieldStep, fieldTimestamp:
		if c == '-' || '0' <= c && c <= '9' {
			end, isInt, err := scanNumber(b, i)
			if err != nil {
				return 0, err
			}
			n, ok := jsonInt(b[i:end], isInt)
			if !ok {
				it.bad = true // strconv.ParseInt fails: a fraction, an exponent, out of range
			} else if f == fieldStep {
				it.step = n
			} else {
				it.timestamp = n
			}
			return end, nil
		}
	case fieldValue: // json.RawMessage: any value, null included
		var end int
		var flags uint8
		var err error
		if c == '"' {
			end, flags, err = scanString(b, i)
		} else {
			end, err = d.skip(b, i, d.base+2)
		}
		it.value = span{start: i, end: end, kind: c, flags: flags}
		return end, err
	default:
		return d.skip(b, i, d.base+2)
	}
	// A value of the wrong type for the field: null is ignored.
	end, err := d.skip(b, i, d.base+2)
	if c != 'n' {
		it.bad = true
	}
	return end, err
}

// jsonInt is strconv.ParseInt(string(n), 10, 64) of a JSON number.
func jsonInt(n []byte, isInt bool) (int64, bool) {
	if !isInt {
		return 0, false
	}
	neg := n[0] == '-'
	if neg {
		n = n[1:]
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var u uint64
	for _, c := range n {
		if u > (1<<63)/10 {
			return 0, false
		}
		if u = u*10 + uint64(c-'0'); u > limit {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

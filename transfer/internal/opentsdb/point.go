package opentsdb

import (
	"strconv"
	"strings"

	"github.com/kestrel-mon/kestrel/proto"
)

// OpenTSDB has neither counter types nor steps: every point is a GAUGE
// with a step of DefaultStep seconds (the transfer raises it to min_step
// before judging, as for every point).
const (
	DefaultType = proto.Gauge
	DefaultStep = 60
)

// msTimestamp: a timestamp above this is in milliseconds (OpenTSDB's
// rule: it does not fit 32 bits; every 13-digit timestamp is one).
const msTimestamp = 1<<32 - 1

// parseTimestamp parses an OpenTSDB timestamp into unix seconds: seconds,
// or milliseconds when above 2^32-1, either possibly with a fraction
// (dropped: "1700000000.123" is 1700000000, where OpenTSDB would remove
// the dot and read milliseconds). ok is false when s is not a number.
func parseTimestamp(s string) (ts int64, ok bool) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		frac := s[i+1:]
		for j := 0; j < len(frac); j++ {
			if frac[j] < '0' || frac[j] > '9' {
				return 0, false
			}
		}
		s = s[:i]
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	if ts > msTimestamp {
		ts /= 1000
	}
	return ts, true
}

// tagProblem returns why k=v is not a tag OpenTSDB and Kestrel accept, OK
// when it is one: the key and the value must not be empty nor hold '=',
// ',' or a space (Open-Falcon's tag string "k=v,k=v" could not be read
// back).
func tagProblem(k, v string) proto.Reason {
	switch {
	case k == "":
		return proto.ReasonTagEmptyKey
	case v == "", !tagText(k), !tagText(v):
		return proto.ReasonBadJSON
	}
	return proto.OK
}

// splitTag splits the word "k=v" of a put line (no spaces) and checks it
// as tagProblem does, in one pass.
func splitTag(w string) (k, v string, r proto.Reason) {
	eq := -1
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case '=':
			if eq >= 0 {
				return "", "", proto.ReasonBadJSON
			}
			eq = i
		case ',':
			return "", "", proto.ReasonBadJSON
		}
	}
	switch {
	case eq < 0, eq == len(w)-1:
		return "", "", proto.ReasonBadJSON
	case eq == 0:
		return "", "", proto.ReasonTagEmptyKey
	}
	return w[:eq], w[eq+1:], proto.OK
}

// tagText reports whether s holds none of '=', ',', ' ' and tab.
func tagText(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '=', ',', ' ', '\t':
			return false
		}
	}
	return true
}

// takeEndpoint removes the endpoint tag from tags (sorted by key, unique
// keys): the first of names a point has. ok is false when it has none.
func takeEndpoint(tags []proto.Tag, names []string) (rest []proto.Tag, endpoint string, ok bool) {
	for _, name := range names {
		for i := range tags {
			if tags[i].Key == name {
				endpoint = tags[i].Value
				return append(tags[:i], tags[i+1:]...), endpoint, true
			}
			if tags[i].Key > name {
				break
			}
		}
	}
	return tags, "", false
}

// parseValue parses a value as OpenTSDB does (an integer or a floating
// point number); out of range is not finite.
func parseValue(s string) (float64, proto.Reason) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, proto.ReasonNotFinite
		}
		return 0, proto.ReasonBadValue
	}
	return v, proto.OK
}

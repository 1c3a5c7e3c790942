package proto

import (
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"strings"
)

// ParseTags parses an Open-Falcon tag string "k1=v1,k2=v2": every space is
// removed, the string is split on ",", each part at its first "="; a part
// without "=" is dropped and a repeated key keeps its last value. The
// result is sorted by key; an empty or tagless string gives nil. A part
// with an empty key ("=x") is kept, as Open-Falcon does; validation
// rejects such a point (ReasonTagEmptyKey), and one with a control
// character in its tags (ReasonTagControl).
func ParseTags(s string) []Tag {
	if s == "" {
		return nil
	}
	if strings.ContainsAny(s, " ") {
		s = strings.ReplaceAll(s, " ", "")
	}
	var tags []Tag
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		tags = append(tags, Tag{Key: k, Value: v})
	}
	return SortTags(tags)
}

// FormatTags returns the canonical Open-Falcon tag string of sorted tags:
// "k=v" joined by ","; no tags gives "".
func FormatTags(tags []Tag) string {
	if len(tags) == 0 {
		return ""
	}
	return string(AppendTags(nil, tags))
}

// AppendTags appends the canonical tag string of sorted tags to dst.
func AppendTags(dst []byte, tags []Tag) []byte {
	for i, t := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, t.Key...)
		dst = append(dst, '=')
		dst = append(dst, t.Value...)
	}
	return dst
}

// TagsLen is len(FormatTags(tags)) without building the string.
func TagsLen(tags []Tag) int {
	n := 0
	for i, t := range tags {
		if i > 0 {
			n++
		}
		n += len(t.Key) + 1 + len(t.Value)
	}
	return n
}

// SeriesKey returns the Open-Falcon primary key of a series:
// "endpoint/metric", or "endpoint/metric/k=v,..." when it has tags.
func SeriesKey(endpoint, metric string, tags []Tag) string {
	return string(AppendSeriesKey(make([]byte, 0, len(endpoint)+len(metric)+2+TagsLen(tags)), endpoint, metric, tags))
}

// AppendSeriesKey appends the series key to dst (no allocation when dst
// has room).
func AppendSeriesKey(dst []byte, endpoint, metric string, tags []Tag) []byte {
	dst = append(dst, endpoint...)
	dst = append(dst, '/')
	dst = append(dst, metric...)
	if len(tags) > 0 {
		dst = append(dst, '/')
		dst = AppendTags(dst, tags)
	}
	return dst
}

// Key returns the series key of p.
func (p *Point) Key() string { return SeriesKey(p.Endpoint, p.Metric, p.Tags) }

// CounterString returns Open-Falcon's counter of a series: "metric" or
// "metric/k=v,...".
func CounterString(metric string, tags []Tag) string {
	if len(tags) == 0 {
		return metric
	}
	return metric + "/" + FormatTags(tags)
}

// Checksum returns the lowercase hex md5 of a series key.
func Checksum(seriesKey string) string {
	sum := md5.Sum([]byte(seriesKey))
	return hex.EncodeToString(sum[:])
}

// StrategyEventID returns "s_<id>_<md5(seriesKey)>".
func StrategyEventID(strategyID int, seriesKey string) string {
	return "s_" + strconv.Itoa(strategyID) + "_" + Checksum(seriesKey)
}

// ExpressionEventID returns "e_<id>_<md5(seriesKey)>".
func ExpressionEventID(expressionID int, seriesKey string) string {
	return "e_" + strconv.Itoa(expressionID) + "_" + Checksum(seriesKey)
}

package opentsdb

import (
	"fmt"
	"strings"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
)

// codec turns OpenTSDB data points into Kestrel points.
type codec struct {
	endpointTags []string // the first of these tags a point has is its endpoint
	noEndpoint   string   // the error when it has none
	version      string   // of kestrel-transfer
	versionLine  string   // the reply to "version"
}

func newCodec(endpointTags []string, version string) *codec {
	return &codec{endpointTags: endpointTags, version: version,
		// OpenTSDB's first line names its build; tools only check that
		// there is an answer.
		versionLine: "net.opentsdb kestrel-transfer " + version + " (OpenTSDB put: telnet and HTTP /api/put)\n",
		noEndpoint:  "no endpoint tag: one of " + strings.Join(endpointTags, ", ") + " is required"}
}

// Protocol is OpenTSDB's telnet protocol (put, version, help, exit and
// quit), the endpoint of a point from the first of endpointTags it has.
func Protocol(endpointTags []string) telnet.Protocol {
	return newCodec(endpointTags, buildVersion()).protocol()
}

// protocol is OpenTSDB's telnet protocol: put, version, help, exit/quit.
func (c *codec) protocol() telnet.Protocol {
	return telnet.Protocol{Listener: ingest.ListenerOpenTSDB, Line: c.line, Unstored: "put: "}
}

// line handles one telnet line. Errors are worded as OpenTSDB words
// them ("put: illegal argument: ...", "put: invalid value: ...",
// "unknown command: ...").
func (c *codec) line(line string, b *telnet.Batch, out []byte) (telnet.Outcome, []byte) {
	f := b.Fields(line)
	if len(f) == 0 {
		return telnet.Outcome{Kind: telnet.Ignored}, out
	}
	switch f[0] {
	case "put":
		return c.put(f, b, out)
	case "version":
		return telnet.Outcome{Kind: telnet.Answered}, append(out, c.versionLine...)
	case "help":
		return telnet.Outcome{Kind: telnet.Answered}, append(out, "available commands: put version help exit quit\n"...)
	case "exit", "quit":
		return telnet.Outcome{Kind: telnet.Quit}, out
	}
	return telnet.Outcome{Kind: telnet.Malformed}, fmt.Appendf(out, "unknown command: %s.  Try `help'.\n", cut(f[0]))
}

// put parses "put <metric> <timestamp> <value> <tagk=tagv> [...]" into
// b, checking in OpenTSDB's order, then Kestrel's.
func (c *codec) put(f []string, b *telnet.Batch, out []byte) (telnet.Outcome, []byte) {
	if len(f) < 5 {
		return telnet.Reject(proto.ReasonBadJSON, "", ""),
			fmt.Appendf(out, "put: illegal argument: not enough arguments (need least 4, got %d)\n", len(f)-1)
	}
	metric := f[1]
	ts, ok := parseTimestamp(f[2])
	if !ok {
		return telnet.Reject(proto.ReasonBadJSON, "", metric), fmt.Appendf(out, "put: invalid value: invalid timestamp: %q\n", cut(f[2]))
	}
	if ts <= 0 {
		return telnet.Reject(proto.ReasonBadJSON, "", metric), fmt.Appendf(out, "put: illegal argument: invalid timestamp: %d\n", ts)
	}
	start := b.TagsStart()
	for _, w := range f[4:] {
		k, v, r := splitTag(w)
		if r != proto.OK {
			return telnet.Reject(r, "", metric), fmt.Appendf(out, "put: illegal argument: invalid tag: %s\n", cut(w))
		}
		b.AddTag(k, v)
	}
	tags, dup, ok := telnet.SortTags(b.Tags(start))
	if !ok {
		return telnet.Reject(proto.ReasonBadJSON, "", metric),
			fmt.Appendf(out, "put: illegal argument: duplicate tag: %s=%s\n", cut(dup.Key), cut(dup.Value))
	}
	v, r := parseValue(f[3])
	if r != proto.OK {
		return telnet.Reject(r, "", metric), fmt.Appendf(out, "put: invalid value: %s: %q\n", r.Text(), cut(f[3]))
	}
	tags, endpoint, ok := takeEndpoint(tags, c.endpointTags)
	if !ok {
		return telnet.Reject(proto.ReasonNoEndpoint, "", metric), fmt.Appendf(out, "put: illegal argument: %s\n", c.noEndpoint)
	}
	p := b.Add(proto.Point{Endpoint: endpoint, Metric: metric, Tags: tags, Value: v, Timestamp: ts, Type: DefaultType, Step: DefaultStep})
	if r := proto.ValidatePoint(p, b.Now); r != proto.OK {
		return telnet.Reject(r, endpoint, metric), fmt.Appendf(out, "put: illegal argument: %s\n", r.Text())
	}
	return telnet.Outcome{Kind: telnet.Added}, out
}

// cut shortens s for an error message.
func cut(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

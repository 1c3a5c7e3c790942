package telnet

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
)

// Open-Falcon's defaults for an update line without them.
const (
	DefaultType = proto.Counter
	DefaultStep = 60
)

// Update is Open-Falcon's telnet protocol: lines
// "update <endpoint> <metric> <timestamp> <value> [<counterType>] [<step>]"
// and "quit".
var Update = Protocol{Listener: ingest.ListenerTelnet, Line: UpdateLine, Unstored: "error: "}

// UpdateLine parses one line of Open-Falcon's telnet protocol into b.
func UpdateLine(line string, b *Batch, out []byte) (Outcome, []byte) {
	f := b.Fields(line)
	if len(f) == 0 {
		return Outcome{Kind: Ignored}, out
	}
	switch f[0] {
	case "update":
	case "quit":
		return Outcome{Kind: Quit}, out
	default:
		return Outcome{Kind: Malformed}, appendError(out, "error: unknown command", f[0], "")
	}
	if len(f) < 5 || len(f) > 7 {
		return Reject(proto.ReasonBadJSON, "", ""), append(out,
			"error: update takes <endpoint> <metric> <timestamp> <value> [<counterType>] [<step>]\n"...)
	}
	p := proto.Point{Endpoint: f[1], Metric: f[2], Type: DefaultType, Step: DefaultStep}
	ts, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return Reject(proto.ReasonBadJSON, p.Endpoint, p.Metric), appendError(out, "error: invalid timestamp", f[3], "")
	}
	p.Timestamp = ts
	// A field that does not parse is a reason of its own; the first
	// failing check in proto's order (the order of the Reason constants)
	// is the one reported, as for every other listener.
	bad, field := proto.OK, ""
	if p.Value, err = strconv.ParseFloat(f[4], 64); err != nil {
		bad, field = proto.ReasonBadValue, f[4]
		if errors.Is(err, strconv.ErrRange) {
			bad = proto.ReasonNotFinite
		}
		p.Value = 0
	}
	if len(f) == 7 {
		step, ok := parseStep(f[6])
		if !ok {
			bad, field = proto.ReasonBadStep, f[6]
		} else {
			p.Step = step
		}
	}
	if len(f) >= 6 {
		ct, ok := proto.ParseCounterType(f[5])
		if !ok {
			bad, field = proto.ReasonCounterType, f[5]
		}
		p.Type = ct
	}
	pt := b.Add(p)
	if r := proto.ValidatePoint(pt, b.Now); r != proto.OK && (bad == proto.OK || r < bad) {
		bad, field = r, ""
	}
	if bad != proto.OK {
		return Reject(bad, p.Endpoint, p.Metric), appendError(out, "error: "+bad.Text(), field, p.Metric)
	}
	return Outcome{Kind: Added}, out
}

// parseStep parses Open-Falcon's step: "<step>", or RRD's
// "<heartbeat>:<min>:<max>:<step>" (Open-Falcon takes the last part). A
// step that does not fit an int32 is not a step.
func parseStep(s string) (int32, bool) {
	if strings.IndexByte(s, ':') >= 0 {
		parts := strings.Split(s, ":")
		if len(parts) != 4 {
			return 0, false
		}
		s = parts[3]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > math.MaxInt32 || v < math.MinInt32 {
		return 0, false
	}
	return int32(v), true
}

// appendError appends "<msg><quoted field>[ (metric <metric>)]\n", the
// field and metric cut to 100 bytes.
func appendError(out []byte, msg, field, metric string) []byte {
	out = append(out, msg...)
	if field != "" {
		out = append(out, ':', ' ')
		out = strconv.AppendQuote(out, cut(field))
	}
	if metric != "" {
		out = append(out, " (metric "...)
		out = strconv.AppendQuote(out, cut(metric))
		out = append(out, ')')
	}
	return append(out, '\n')
}

func cut(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

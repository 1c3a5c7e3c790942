package opentsdb

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
)

const now = 1700000000

// putLine is what the telnet protocol makes of one line: the point, or
// the outcome's reason and the reply.
func putLine(c *codec, line string) string {
	b := telnet.Batch{Now: now}
	o, out := c.line(b.Line([]byte(line)), &b, nil)
	switch o.Kind {
	case telnet.Added:
		return fmt.Sprint(b.Points[len(b.Points)-1])
	case telnet.Rejected:
		return o.Reason.String() + ": " + strings.TrimSuffix(string(out), "\n")
	}
	return fmt.Sprintf("kind %d: %s", o.Kind, strings.TrimSuffix(string(out), "\n"))
}

func TestPutLine(t *testing.T) {
	c := newCodec([]string{"endpoint", "host"}, "v1")
	f := func(line, want string) {
		t.Helper()
		if got := putLine(c, line); got != want {
			t.Errorf("%q:\n got %s\nwant %s", line, got, want)
		}
	}
	// The endpoint: the first of endpoint_tags present, taken out of the
	// tags; the other tags stay, sorted.
	f("put sys.cpu.user 1699999990 42.5 host=web01 cpu=0", "{web01 sys.cpu.user [{cpu 0}] 42.5 1699999990 GAUGE 60}")
	f("put m 1699999990 1 host=web01 endpoint=svc zone=a", "{svc m [{host web01} {zone a}] 1 1699999990 GAUGE 60}")
	f("put m 1699999990 1 endpoint=svc", "{svc m [] 1 1699999990 GAUGE 60}")
	// Milliseconds (above 2^32-1: every 13-digit timestamp), fractions.
	f("put m 1699999990123 1 host=h", "{h m [] 1 1699999990 GAUGE 60}")
	f("put m 1699999990.123 1 host=h", "{h m [] 1 1699999990 GAUGE 60}")
	f("put m 1699999990123.5 1 host=h", "{h m [] 1 1699999990 GAUGE 60}")
	f("put m 4294967295 1 host=h", "future_timestamp: put: illegal argument: timestamp is more than 10 minutes in the future")
	f("put m 1699999990 -7 host=h a=1 a=1", "{h m [{a 1}] -7 1699999990 GAUGE 60}")
	f("put  m\t1699999990  1e3  host=h  ", "{h m [] 1000 1699999990 GAUGE 60}")
	// OpenTSDB's errors.
	f("put m 1699999990 1", "bad_json: put: illegal argument: not enough arguments (need least 4, got 3)")
	f("put", "bad_json: put: illegal argument: not enough arguments (need least 4, got 0)")
	f("put m 12:00 1 host=h", `bad_json: put: invalid value: invalid timestamp: "12:00"`)
	f("put m 1.2.3 1 host=h", `bad_json: put: invalid value: invalid timestamp: "1.2.3"`)
	f("put m 0 1 host=h", "bad_json: put: illegal argument: invalid timestamp: 0")
	f("put m -5 1 host=h", "bad_json: put: illegal argument: invalid timestamp: -5")
	f("put m 1699999990 x host=h", `bad_value: put: invalid value: value is not a number or numeric string: "x"`)
	f("put m 1699999990 1e999 host=h", `value_not_finite: put: invalid value: value is NaN or infinite: "1e999"`)
	f("put m 1699999990 NaN host=h", "value_not_finite: put: illegal argument: value is NaN or infinite")
	f("put m 1699999990 1 host", "bad_json: put: illegal argument: invalid tag: host")
	f("put m 1699999990 1 host=", "bad_json: put: illegal argument: invalid tag: host=")
	f("put m 1699999990 1 =h", "empty_tag_key: put: illegal argument: invalid tag: =h")
	f("put m 1699999990 1 host=a=b", "bad_json: put: illegal argument: invalid tag: host=a=b")
	f("put m 1699999990 1 host=a,b", "bad_json: put: illegal argument: invalid tag: host=a,b")
	f("put m 1699999990 1 host=a host=b", "bad_json: put: illegal argument: duplicate tag: host=b")
	f("put m 1699999990 1 cpu=0", "empty_endpoint: put: illegal argument: no endpoint tag: one of endpoint, host is required")
	f("put kernel.hostname 1699999990 1 host=h", "kernel_hostname: put: illegal argument: metric kernel.hostname is not accepted")
	f("put m 1699999990 1 host=h\x7f", "endpoint_control_char: put: illegal argument: endpoint contains a control character")
	f("put m 1699999990 1 host=h "+strings.Repeat("t=1 ", 1)+strings.Repeat("k", 600)+"=v", "metric_tags_too_long: put: illegal argument: metric and tags together exceed 510 bytes")
	// Other commands.
	f("version", "kind 3: net.opentsdb kestrel-transfer v1 (OpenTSDB put: telnet and HTTP /api/put)")
	f("help", "kind 3: available commands: put version help exit quit")
	f("exit", "kind 5: ")
	f("quit", "kind 5: ")
	f("", "kind 4: ")
	f("PUT m 1 1 host=h", "kind 2: unknown command: PUT.  Try `help'.")
	f("stats", "kind 2: unknown command: stats.  Try `help'.")
}

func TestParseTimestamp(t *testing.T) {
	f := func(s string, want int64, wantOK bool) {
		t.Helper()
		if got, ok := parseTimestamp(s); got != want || ok != wantOK {
			t.Errorf("%q: %d %v, want %d %v", s, got, ok, want, wantOK)
		}
	}
	f("1700000000", 1700000000, true)
	f("4294967295", 4294967295, true) // the largest in seconds
	f("4294967296", 4294967, true)
	f("1700000000000", 1700000000, true)
	f("1700000000.5", 1700000000, true)
	f("1700000000.", 1700000000, true)
	f("1700000000.x", 0, false)
	f("-1", -1, true)
	f("", 0, false)
	f("1e9", 0, false)
	f("99999999999999999999", 0, false)
}

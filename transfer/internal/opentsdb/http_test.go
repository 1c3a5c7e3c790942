package opentsdb

import (
	"fmt"
	"strings"
	"testing"
)

// TestDecode: a /api/put body, as points and per-point failures.
func TestDecode(t *testing.T) {
	c := newCodec([]string{"endpoint", "host"}, "v1")
	f := func(body, want string) {
		t.Helper()
		d, err := c.decode([]byte(body), now, true)
		var got []string
		if err != nil {
			got = append(got, "error: "+err.Error())
		}
		for _, p := range d.points {
			got = append(got, fmt.Sprint(p))
		}
		for _, fl := range d.failed {
			got = append(got, fmt.Sprintf("%s %q %s", fl.reason, fl.text, fl.raw))
		}
		if g := strings.Join(got, "\n"); g != want {
			t.Errorf("%s:\n got %s\nwant %s", body, g, want)
		}
	}
	f(`{"metric":"sys.cpu.nice","timestamp":1699999990,"value":18,"tags":{"host":"web01","dc":"lga"}}`,
		"{web01 sys.cpu.nice [{dc lga}] 18 1699999990 GAUGE 60}")
	f(` [{"metric":"m","timestamp":"1699999990000","value":"1.5","tags":{"endpoint":"e","host":"h"}},
	     {"metric":"m","timestamp":1699999990.5,"value":-2,"tags":{"host":"h"}}] `,
		"{e m [{host h}] 1.5 1699999990 GAUGE 60}\n{h m [] -2 1699999990 GAUGE 60}")
	// One failure per bad point, in OpenTSDB's order and wording; the
	// good points are kept.
	f(`[{"metric":"","timestamp":1,"value":1,"tags":{"host":"h"}},
	    {"metric":"m","value":1,"tags":{"host":"h"}},
	    {"metric":"m","timestamp":0,"value":1,"tags":{"host":"h"}},
	    {"metric":"m","timestamp":1,"value":"","tags":{"host":"h"}},
	    {"metric":"m","timestamp":1,"value":null,"tags":{"host":"h"}},
	    {"metric":"m","timestamp":1,"value":1},
	    {"metric":"m","timestamp":1,"value":1,"tags":{"cpu":"0"}},
	    {"metric":"m","timestamp":1,"value":true,"tags":{"host":"h"}},
	    {"metric":"m","timestamp":1,"value":"1e999","tags":{"host":"h"}},
	    {"metric":"m","timestamp":1,"value":1,"tags":{"host":"a b"}},
	    {"metric":"m","timestamp":1,"value":1,"tags":{"":"x","host":"h"}},
	    {"metric":"m","timestamp":1,"value":1,"tags":{"host":1}},
	    {"metric":"m","timestamp":"soon","value":1,"tags":{"host":"h"}},
	    {"metric":"m","timestamp":1800000000,"value":1,"tags":{"host":"h"}},
	    {"metric":"kernel.hostname","timestamp":1,"value":1,"tags":{"host":"h"}},
	    7,
	    {"metric":"ok","timestamp":1,"value":"3","tags":{"host":"h"}}]`,
		"{h ok [] 3 1 GAUGE 60}\n"+
			`empty_metric "Metric name was empty" {"metric":"","timestamp":1,"value":1,"tags":{"host":"h"}}`+"\n"+
			`bad_json "Invalid timestamp" {"metric":"m","value":1,"tags":{"host":"h"}}`+"\n"+
			`bad_json "Invalid timestamp" {"metric":"m","timestamp":0,"value":1,"tags":{"host":"h"}}`+"\n"+
			`empty_value "Empty value" {"metric":"m","timestamp":1,"value":"","tags":{"host":"h"}}`+"\n"+
			`empty_value "Empty value" {"metric":"m","timestamp":1,"value":null,"tags":{"host":"h"}}`+"\n"+
			`empty_endpoint "Missing tags" {"metric":"m","timestamp":1,"value":1}`+"\n"+
			`empty_endpoint "no endpoint tag: one of endpoint, host is required" {"metric":"m","timestamp":1,"value":1,"tags":{"cpu":"0"}}`+"\n"+
			`bad_value "Unable to parse value to a number" {"metric":"m","timestamp":1,"value":true,"tags":{"host":"h"}}`+"\n"+
			`value_not_finite "value is NaN or infinite" {"metric":"m","timestamp":1,"value":"1e999","tags":{"host":"h"}}`+"\n"+
			`bad_json "Invalid tag: host=a b" {"metric":"m","timestamp":1,"value":1,"tags":{"host":"a b"}}`+"\n"+
			`empty_tag_key "Invalid tag: =x" {"metric":"m","timestamp":1,"value":1,"tags":{"":"x","host":"h"}}`+"\n"+
			`bad_json "Unable to parse the data point: json: cannot unmarshal number into Go struct field datapoint.tags of type string" {"metric":"m","timestamp":1,"value":1,"tags":{"host":1}}`+"\n"+
			`bad_json "Invalid timestamp" {"metric":"m","timestamp":"soon","value":1,"tags":{"host":"h"}}`+"\n"+
			`future_timestamp "timestamp is more than 10 minutes in the future" {"metric":"m","timestamp":1800000000,"value":1,"tags":{"host":"h"}}`+"\n"+
			`kernel_hostname "metric kernel.hostname is not accepted" {"metric":"kernel.hostname","timestamp":1,"value":1,"tags":{"host":"h"}}`+"\n"+
			`bad_json "Unable to parse the data point: json: cannot unmarshal number into Go value of type opentsdb.datapoint" 7`)
	// Bodies that are not data points: nothing is stored.
	f(`[]`, "error: No datapoints found in content")
	f(``, "error: Unable to parse the given JSON: the body is not a data point object nor an array of them")
	f(`"x"`, "error: Unable to parse the given JSON: the body is not a data point object nor an array of them")
	f(`{"metric":"m"`, "error: Unable to parse the given JSON: invalid object")
	f(`[{"metric":"m","timestamp":1,"value":1,"tags":{"host":"h"}}`, "error: Unable to parse the given JSON: unexpected end of JSON input")
}

package push

import (
	"testing"

	"github.com/kestrel-mon/kestrel/proto"
)

func TestDecodeFills(t *testing.T) {
	d := Defaults{Endpoint: "me", Step: 30}
	cases := []struct {
		body    string
		want    proto.Point
		reason  string
		wantErr bool
	}{
		{body: `[{"metric":"m","value":1}]`, want: proto.Point{Endpoint: "me", Metric: "m", Value: 1, Timestamp: 1000, Step: 30}},
		{body: `[{"endpoint":"x","metric":"m","value":"2.5","step":10,"counterType":"DERIVE","timestamp":900,"tags":"b=1, a=2"}]`,
			want: proto.Point{Endpoint: "x", Metric: "m", Value: 2.5, Timestamp: 900, Step: 10, Type: proto.Derive, Tags: []proto.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: "1"}}}},
		{body: `[{"metric":"m","value":1,"timestamp":-5}]`, want: proto.Point{Endpoint: "me", Metric: "m", Value: 1, Timestamp: 1000, Step: 30}},
		{body: `[{"metric":"m","value":1,"step":-1}]`, reason: "bad_step"},
		{body: `[{"metric":"m","value":1,"counterType":"gauge"}]`, reason: "bad_counter_type"},
		{body: `[{"metric":"kernel.hostname","value":1}]`, reason: "kernel_hostname"},
		{body: `[{"metric":"m","value":"abc"}]`, reason: "bad_value"},
		{body: `[{"metric":"m","value":1,"step":"60"}]`, reason: "bad_json"},
		{body: `[null]`, reason: "nil"},
		{body: `[{"value":1}]`, reason: "empty_metric"},
		{body: ``, wantErr: true},
		{body: `{}`, wantErr: true},
		{body: `[1,`, wantErr: true},
	}
	for _, tc := range cases {
		pts, rej, err := Decode([]byte(tc.body), d, 1000)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: no error", tc.body)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		if tc.reason != "" {
			if len(rej) != 1 || rej[0].Reason != tc.reason || len(pts) != 0 {
				t.Errorf("%s: got %+v %+v, want reason %s", tc.body, pts, rej, tc.reason)
			}
			continue
		}
		if len(pts) != 1 || len(rej) != 0 {
			t.Errorf("%s: got %+v %+v", tc.body, pts, rej)
			continue
		}
		if pts[0].Key() != tc.want.Key() || pts[0].Value != tc.want.Value || pts[0].Timestamp != tc.want.Timestamp ||
			pts[0].Step != tc.want.Step || pts[0].Type != tc.want.Type {
			t.Errorf("%s: got %+v, want %+v", tc.body, pts[0], tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, `[]`, `[null]`, `{}`, `[{"metric":"m","value":1}]`,
		`[{"endpoint":"e","metric":"m","value":"1e400","step":60,"counterType":"GAUGE","tags":"a=b","timestamp":1}]`,
		`[{"metric":"m","value":true},"x",1,[]]`,
		`[{"metric":"m","value":1,"step":99999999999}]`,
	} {
		f.Add([]byte(s))
	}
	d := Defaults{Endpoint: "me", Step: 60}
	f.Fuzz(func(t *testing.T, body []byte) {
		pts, rej, err := Decode(body, d, 1_700_000_000)
		if err != nil {
			if len(pts) != 0 || len(rej) != 0 {
				t.Fatal("points or rejections with a body error")
			}
			return
		}
		for i := range pts {
			if r := proto.ValidatePoint(&pts[i], 1_700_000_000); r != proto.OK {
				t.Fatalf("accepted an invalid point %+v: %v", pts[i], r)
			}
		}
		for i := 1; i < len(rej); i++ {
			if rej[i-1].Index >= rej[i].Index {
				t.Fatalf("rejections not in body order: %+v", rej)
			}
		}
		// Round trip through the batch codec.
		if len(pts) > 0 {
			back, err := proto.DecodeBatch(proto.EncodeBatch(pts))
			if err != nil || len(back) != len(pts) {
				t.Fatalf("codec round trip: %v", err)
			}
		}
	})
}

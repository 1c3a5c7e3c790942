package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// rpcRef is how net/rpc/jsonrpc's server codec reads a request.
func rpcRef(req []byte) (r RPCRequest, err error) {
	var sr struct {
		Method string           `json:"method"`
		Params *json.RawMessage `json:"params"`
		ID     *json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(req, &sr); err != nil {
		return r, err
	}
	r.Method = []byte(sr.Method)
	if sr.ID != nil {
		r.ID = *sr.ID
	}
	if sr.Params != nil {
		r.Params = *sr.Params
		var elems []json.RawMessage
		if json.Unmarshal(r.Params, &elems) == nil && len(elems) > 0 {
			r.Arg = elems[0]
		}
	}
	return r, nil
}

// rpcDiff checks the request against net/rpc's reading and, when its
// params[0] is an array, its decoding against the encoding/json path.
func rpcDiff(d *MVDecoder, req []byte) string {
	want, werr := rpcRef(req)
	n, got, res, gerr := d.DecodeRPCRequest(req, now)
	if gerr == nil && skipWS(req, n) != len(req) {
		gerr = jsonErr(req, skipWS(req, n), "after the request") // json.Unmarshal takes one value
	}
	switch {
	case (werr == nil) != (gerr == nil):
		return "error " + errString(gerr) + ", encoding/json: " + errString(werr)
	case werr != nil:
		return ""
	case !bytes.Equal(got.Method, want.Method) || !bytes.Equal(got.ID, want.ID) || (got.ID == nil) != (want.ID == nil) ||
		!bytes.Equal(got.Params, want.Params) || (got.Params == nil) != (want.Params == nil) ||
		!bytes.Equal(got.Arg, want.Arg) || (got.Arg == nil) != (want.Arg == nil):
		return "got " + show(got) + ", want " + show(want)
	}
	if got.Arg == nil || got.Arg[0] != '[' {
		if res.Total != 0 || len(res.Points) != 0 || len(res.Rejected) != 0 {
			return fmt.Sprintf("params[0] %s decoded: %+v", got.Arg, res)
		}
		return ""
	}
	arg := append([]byte(nil), got.Arg...)
	var d2 MVDecoder
	if msg := diff(&d2, arg, now); msg != "" {
		return "params[0] alone: " + msg
	}
	again, _ := d2.Decode(arg, now)
	return sameResult(res, again)
}

// sameResult says how a and b differ, or "".
func sameResult(a, b MVResult) string {
	if a.Total != b.Total || len(a.Points) != len(b.Points) || len(a.Rejected) != len(b.Rejected) {
		return fmt.Sprintf("decoded in the request: %+v, alone: %+v", a, b)
	}
	for i := range a.Points {
		if a.Points[i].Key() != b.Points[i].Key() || a.Points[i].Value != b.Points[i].Value {
			return fmt.Sprintf("point %d decoded in the request: %+v, alone: %+v", i, a.Points[i], b.Points[i])
		}
	}
	for i := range a.Rejected {
		if a.Rejected[i] != b.Rejected[i] {
			return fmt.Sprintf("rejected %d in the request: %+v, alone: %+v", i, a.Rejected[i], b.Rejected[i])
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

func show(r RPCRequest) string {
	return "method " + string(r.Method) + " id " + string(r.ID) + " params " + string(r.Params) + " arg " + string(r.Arg)
}

func TestDecodeRPCRequest(t *testing.T) {
	var d MVDecoder
	for _, req := range []string{
		`{"method":"Transfer.Update","params":[[{"endpoint":"h","metric":"m","value":1}]],"id":0}`,
		` {"id":7,"params":[[]],"method":"Transfer.Update"} `,
		`{"method":"Transfer.Ping","params":[{}],"id":"abc"}`,
		`{"method":"Transfer.Update","params":[[1],[2]],"id":{"x":[1, 2]}}`,
		`{"method":"Transfer.Update","params":[[{"endpoint":"h","metric":"m","value":"2","step":60,"counterType":"GAUGE","tags":"b=1,a=2"},null,7]],"id":3}`,
		`{"params":[[{"endpoint":"a","metric":"m","value":1,"step":60,"counterType":"GAUGE"}]],"params":[[{"endpoint":"b","metric":"m","value":1,"step":60,"counterType":"GAUGE"}]]}`,
		`{"params":[[{"endpoint":"a","metric":"m","value":1,"step":60,"counterType":"GAUGE"}]],"params":[{}]}`,
		`{"params":[[{"endpoint":"a","metric":"m","value":1,"step":60,"counterType":"GAUGE"}]],"params":null}`,
		`{"params":[[{"endpoint":"a","metric":"m","value":1,"step":60,"counterType":"GAUGE"}]],"method":"x","id":[}`,
		`{"method":"Transfer.Update","params":[],"id":null}`,
		`{"method":"Transfer.Update","params":null,"id":1}`,
		`{"method":"Transfer.Update","params":{},"id":1}`,
		`{"method":"Transfer.Update","params":"x","id":1}`,
		`{"method":"Transfer.Update","id":1}`,
		`{"METHOD":"Transfer.Update","Params":[null],"iD":1.5e3}`,
		`{"method":"Transfer.\u0055pdate","params":[ [ ] ],"id":1,"id":2,"extra":[{"a":null}]}`,
		`{"method":"a","method":null,"params":[1],"params":null}`,
		`{"method":1,"params":[],"id":1}`,
		`{"method":["x"],"params":[],"id":1}`,
		`{}`, `null`, ` null `, `[]`, `[{"method":"x"}]`, `"x"`, `1`, `true`,
		`{"method":"x"`, `{"method":"x",}`, `{"method" "x"}`, `{"method":"x"} {}`, `{"method":"x"}x`, `{"params":[1,]}`,
		`{"params":[[1]`, "{\"method\":\"a\x01\"}", `{"id":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		`{"id":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"params":[` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `]}`,
		`{"params":[` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `]}`,
		`{"params":[[{"value":` + strings.Repeat("[", 9996) + strings.Repeat("]", 9996) + `}]]}`,
		`{"params":[[{"value":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}]]}`,
		`{"params":[[` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `]]}`,
		`{"params":[[` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `]]}`,
		``, ` `,
	} {
		if msg := rpcDiff(&d, []byte(req)); msg != "" {
			t.Errorf("%s: %s", trunc(req), msg)
		}
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func FuzzDecodeRPCRequest(f *testing.F) {
	for _, s := range []string{
		`{"method":"Transfer.Update","params":[[{"endpoint":"h","metric":"m","value":1}]],"id":0}`,
		`{"method":"Transfer.Ping","params":[{}],"id":"abc"}`,
		`{"Method":"a","method":null,"params":[1],"params":null,"ID":[1,{"a":2}]}`,
		`{"params":[[{"endpoint":"h","metric":"m","value":" 1","step":60,"counterType":"GAUGE","tags":"x=1"},{"metric":"kernel.hostname"}],[{"a":1}]]}`,
		`null`, `{"method":1}`,
	} {
		f.Add([]byte(s))
	}
	var d MVDecoder
	f.Fuzz(func(t *testing.T, req []byte) {
		if msg := rpcDiff(&d, req); msg != "" {
			t.Fatalf("%q: %s", req, msg)
		}
	})
}

// Every proper prefix of a request is Truncated: a stream reader reads
// more; a request followed by more is taken alone.
func TestDecodeRPCRequestPrefixes(t *testing.T) {
	var d MVDecoder
	req := `{"method":"Transfer.Update","params":[[{"endpoint":"h\u00e9\"","metric":"m","value":-1.5e3,"step":60,"counterType":"GAUGE","tags":"a=1","timestamp":null},true,false,null,{}]],"id":[12,"x"]}`
	for k := 0; k < len(req); k++ {
		_, _, _, err := d.DecodeRPCRequest([]byte(req[:k]), now)
		var je *JSONError
		if !errors.As(err, &je) || !je.Truncated() {
			t.Fatalf("prefix %q: %v, want truncated", req[:k], err)
		}
	}
	n, r, res, err := d.DecodeRPCRequest([]byte(" \n"+req+"\n{next"), now)
	if err != nil || n != len(req)+2 || string(r.ID) != `[12,"x"]` || res.Total != 5 || len(res.Points) != 1 {
		t.Fatalf("n %d, %s, %+v, %v", n, show(r), res, err)
	}
	if _, _, _, err := d.DecodeRPCRequest([]byte(`{"method":"x"`+"\x01"), now); err == nil || errors.As(err, new(*JSONError)) && err.(*JSONError).Truncated() {
		t.Fatalf("a bad byte after a prefix: %v, want a syntax error", err)
	}
}

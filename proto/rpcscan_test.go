package proto

import (
	"bytes"
	"encoding/json"
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

func rpcDiff(req []byte) string {
	want, werr := rpcRef(req)
	got, gerr := ParseRPCRequest(req)
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

func TestParseRPCRequest(t *testing.T) {
	for _, req := range []string{
		`{"method":"Transfer.Update","params":[[{"endpoint":"h","metric":"m","value":1}]],"id":0}`,
		` {"id":7,"params":[[]],"method":"Transfer.Update"} `,
		`{"method":"Transfer.Ping","params":[{}],"id":"abc"}`,
		`{"method":"Transfer.Update","params":[[1],[2]],"id":{"x":[1, 2]}}`,
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
		``, ` `,
	} {
		if msg := rpcDiff([]byte(req)); msg != "" {
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

func FuzzParseRPCRequest(f *testing.F) {
	for _, s := range []string{
		`{"method":"Transfer.Update","params":[[{"endpoint":"h","metric":"m","value":1}]],"id":0}`,
		`{"method":"Transfer.Ping","params":[{}],"id":"abc"}`,
		`{"Method":"a","method":null,"params":[1],"params":null,"ID":[1,{"a":2}]}`,
		`null`, `{"method":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		if msg := rpcDiff(req); msg != "" {
			t.Fatalf("%q: %s", req, msg)
		}
	})
}

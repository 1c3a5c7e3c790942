package proto

import (
	"errors"
)

// RPCRequest is one request of Go's net/rpc/jsonrpc (JSON-RPC 1.0), the
// wire format of Open-Falcon's Transfer.Update:
// {"method":"Transfer.Update","params":[[<MetricValue>,...]],"id":N}. Its
// byte slices point into the request given to ParseRPCRequest.
type RPCRequest struct {
	Method []byte // decoded; empty when absent or null
	ID     []byte // raw JSON; nil when absent or null (the reply's id is then null)
	Params []byte // raw JSON; nil when absent or null
	Arg    []byte // raw JSON of params[0]; nil unless params is an array with an element
}

// ErrRPCNotObject is a request that is not a JSON object.
var ErrRPCNotObject = errors.New("request is not a JSON object")

// ErrRPCMethodType is a request whose method is not a string.
var ErrRPCMethodType = errors.New("request method is not a string")

// ParseRPCRequest reads the request req (one JSON value, white space
// around it allowed) as net/rpc/jsonrpc's server codec does: keys matched
// as encoding/json matches them, the last of a repeated key winning,
// other keys ignored, the whole request checked as encoding/json checks
// it. An error (a *JSONError, ErrRPCNotObject, ErrRPCMethodType) is a
// request net/rpc would not answer: it closes the connection.
func ParseRPCRequest(req []byte) (RPCRequest, error) {
	var r RPCRequest
	stack := make([]byte, 0, 16)
	i := skipWS(req, 0)
	if i >= len(req) || req[i] != '{' {
		if i >= len(req) {
			return r, jsonErr(req, i, "")
		}
		end, _, err := skipValue(req, i, 0, nil)
		switch {
		case err != nil:
			return r, err
		case skipWS(req, end) != len(req):
			return r, jsonErr(req, skipWS(req, end), "after top-level value")
		case string(req[i:end]) == "null": // decodes into an empty request
			return r, nil
		}
		return r, ErrRPCNotObject
	}
	i = skipWS(req, i+1)
	typeErr := false
	for closed := i < len(req) && req[i] == '}'; !closed; {
		if i >= len(req) || req[i] != '"' {
			return r, jsonErr(req, i, "looking for beginning of object key string")
		}
		end, flags, err := scanString(req, i)
		if err != nil {
			return r, err
		}
		key := req[i+1 : end-1]
		if flags != 0 {
			key = appendString(nil, req[i:end], flags)
		}
		if i, err = colon(req, end); err != nil {
			return r, err
		}
		start := i
		var arg []byte
		if keyIs(key, "params") && i < len(req) && req[i] == '[' {
			i, arg, stack, err = scanParams(req, i, stack)
		} else {
			i, stack, err = skipValue(req, i, 1, stack)
		}
		if err != nil {
			return r, err
		}
		val := req[start:i]
		switch {
		case keyIs(key, "method"):
			switch val[0] {
			case '"':
				_, flags, _ := scanString(val, 0)
				r.Method = val[1 : len(val)-1]
				if flags != 0 {
					r.Method = appendString(nil, val, flags)
				}
			case 'n':
			default:
				typeErr = true
			}
		case keyIs(key, "params"):
			r.Params, r.Arg = nil, arg
			if val[0] != 'n' {
				r.Params = val
			}
		case keyIs(key, "id"):
			r.ID = nil
			if val[0] != 'n' {
				r.ID = val
			}
		}
		i = skipWS(req, i)
		switch {
		case i < len(req) && req[i] == '}':
			closed = true
		case i < len(req) && req[i] == ',':
			i = skipWS(req, i+1)
		default:
			return r, jsonErr(req, i, "after object key:value pair")
		}
	}
	if i = skipWS(req, i+1); i != len(req) {
		return r, jsonErr(req, i, "after top-level value")
	}
	if typeErr {
		return r, ErrRPCMethodType
	}
	return r, nil
}

// scanParams reads the params array at b[i] and returns its first
// element (nil when it has none).
func scanParams(b []byte, i int, stack []byte) (end int, arg, stack2 []byte, err error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil, stack, nil
	}
	for n := 0; ; n++ {
		start := skipWS(b, i)
		if i, stack, err = skipValue(b, start, 2, stack); err != nil {
			return 0, nil, stack, err
		}
		if n == 0 {
			arg = b[start:i]
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, arg, stack, nil
		}
		return 0, nil, stack, jsonErr(b, i, "after array element")
	}
}

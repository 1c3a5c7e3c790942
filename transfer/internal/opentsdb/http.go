package opentsdb

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
)

// httpAPI serves POST /api/put (and GET /api/version) as OpenTSDB does.
type httpAPI struct {
	c        *codec
	pub      *ingest.Publisher
	maxBytes int
	bufs     sync.Pool
}

// retryAfter is the Retry-After of a 503 (seconds).
const retryAfter = "1"

// maxPooled bounds the body buffer the pool keeps.
const maxPooled = 4 << 20

func (h *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/api/put":
		h.put(w, r)
	case "/api/version":
		writeJSON(w, http.StatusOK, map[string]string{"version": "kestrel-transfer " + h.c.version, "repo": "kestrel",
			"short_revision": "", "full_revision": "", "host": "", "user": "", "repo_status": "", "timestamp": ""})
	default:
		writeError(w, http.StatusNotFound, "Endpoint not found", "this OpenTSDB-compatible listener serves POST /api/put only")
	}
}

// put stores the data points of one request; it answers success only
// once Publish returned nil for every valid one.
func (h *httpAPI) put(w http.ResponseWriter, r *http.Request) {
	const l = ingest.ListenerTSDBHTTP
	if r.Method != http.MethodPost {
		h.pub.Refused(l, ingest.RefusedMalformed, fmt.Errorf("method %s", r.Method))
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed",
			"The HTTP method ["+r.Method+"] is not permitted for this endpoint")
		return
	}
	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooled {
			h.bufs.Put(buf)
		}
	}()
	if err := h.readBody(r, buf); err != nil {
		h.pub.Accepted(l, 0)
		h.readFailed(w, r, err)
		return
	}
	q := r.URL.Query()
	summary, details := q.Has("summary"), q.Has("details")
	res, err := h.c.decode(buf.Bytes(), time.Now().Unix(), details)
	if err != nil {
		h.pub.Accepted(l, 0)
		h.pub.Refused(l, ingest.RefusedMalformed, err)
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	for _, f := range res.failed {
		h.pub.Rejected(l, f.reason, f.endpoint, f.metric)
	}
	h.pub.Accepted(l, len(res.points))
	if err := h.pub.Publish(r.Context(), res.points); err != nil {
		h.pub.Refused(l, ingest.RefusalOf(err), err)
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusServiceUnavailable, "Data points not stored, retry", err.Error())
		return
	}
	failed := len(res.failed)
	switch {
	case !summary && !details && failed == 0:
		w.WriteHeader(http.StatusNoContent)
	case !summary && !details:
		writeError(w, http.StatusBadRequest, "One or more data points had errors",
			`Please see the TSD logs or append "details" to the put request`)
	default:
		code := http.StatusOK
		if failed > 0 {
			code = http.StatusBadRequest // as OpenTSDB answers ?summary and ?details
		}
		reply := putSummary{Success: len(res.points), Failed: failed}
		if details {
			reply.Errors = make([]putError, 0, failed)
			for _, f := range res.failed {
				reply.Errors = append(reply.Errors, putError{Datapoint: f.raw, Error: f.text})
			}
		}
		writeJSON(w, code, reply)
	}
}

// readFailed answers a body that could not be read whole.
func (h *httpAPI) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	const l = ingest.ListenerTSDBHTTP
	var tooLarge *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooLarge):
		h.pub.Refused(l, ingest.RefusedTooLarge, err)
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, "Request body too large",
			fmt.Sprintf("the body exceeds %d bytes (ingest.max_request_bytes)", h.maxBytes))
	case errors.As(err, &ne) && ne.Timeout():
		h.pub.Refused(l, ingest.RefusedTimeout, err)
		writeError(w, http.StatusRequestTimeout, "Request body not received in time", "")
	default:
		h.pub.Refused(l, ingest.RefusedMalformed, err)
		if r.Context().Err() == nil { // else the client went away
			writeError(w, http.StatusBadRequest, "Unable to read the request body", err.Error())
		}
	}
}

// readBody reads the body (gunzipped when Content-Encoding says gzip, as
// OpenTSDB's clients send it) into buf, at most maxBytes of it: beyond,
// an *http.MaxBytesError.
func (h *httpAPI) readBody(r *http.Request, buf *bytes.Buffer) error {
	tooLarge := &http.MaxBytesError{Limit: int64(h.maxBytes)}
	if r.ContentLength > int64(h.maxBytes) {
		return tooLarge
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	body := http.MaxBytesReader(nil, r.Body, int64(h.maxBytes))
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		n, err := buf.ReadFrom(io.LimitReader(zr, int64(h.maxBytes)+1))
		if err == nil && n > int64(h.maxBytes) {
			return tooLarge
		}
		return err
	}
	_, err := buf.ReadFrom(body)
	return err
}

type putSummary struct {
	Success int        `json:"success"`
	Failed  int        `json:"failed"`
	Errors  []putError `json:"errors,omitempty"`
}

type putError struct {
	Datapoint json.RawMessage `json:"datapoint"`
	Error     string          `json:"error"`
}

// writeError writes OpenTSDB's error object.
func writeError(w http.ResponseWriter, code int, msg, details string) {
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details string `json:"details,omitempty"`
	}
	writeJSON(w, code, map[string]body{"error": {Code: code, Message: msg, Details: details}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// decoded is one request's data points.
type decoded struct {
	points []proto.Point
	failed []failure
}

// failure is a data point that is not stored.
type failure struct {
	reason           proto.Reason
	text             string          // OpenTSDB's wording where it has one
	raw              json.RawMessage // the data point as sent (kept for ?details)
	endpoint, metric string
}

// datapoint is one element of a /api/put body.
type datapoint struct {
	Metric    string            `json:"metric"`
	Timestamp json.RawMessage   `json:"timestamp"`
	Value     json.RawMessage   `json:"value"`
	Tags      map[string]string `json:"tags"`
}

// errNoPoints: the body holds no data point (OpenTSDB's wording).
var errNoPoints = errors.New("No datapoints found in content")

// decode parses a /api/put body: one data point object or an array of
// them. A body that is not JSON of that shape is an error (nothing is
// stored, as OpenTSDB does); a data point that is wrong is a failure of
// its own and never spoils its neighbours. keepRaw keeps each failed
// point's JSON for ?details.
func (c *codec) decode(body []byte, now int64, keepRaw bool) (decoded, error) {
	var items []json.RawMessage
	body = bytes.TrimSpace(body)
	switch {
	case len(body) > 0 && body[0] == '[':
		if err := json.Unmarshal(body, &items); err != nil {
			return decoded{}, fmt.Errorf("Unable to parse the given JSON: %w", err)
		}
	case len(body) > 0 && body[0] == '{':
		if !json.Valid(body) {
			return decoded{}, errors.New("Unable to parse the given JSON: invalid object")
		}
		items = []json.RawMessage{body}
	default:
		return decoded{}, errors.New("Unable to parse the given JSON: the body is not a data point object nor an array of them")
	}
	if len(items) == 0 {
		return decoded{}, errNoPoints
	}
	d := decoded{points: make([]proto.Point, 0, len(items))}
	var tags []proto.Tag
	for _, raw := range items {
		var dp datapoint
		p, r, text := proto.Point{}, proto.OK, ""
		if err := json.Unmarshal(raw, &dp); err != nil {
			r, text = proto.ReasonBadJSON, "Unable to parse the data point: "+err.Error()
		} else {
			p, tags, r, text = c.point(&dp, tags[:0], now)
		}
		if r != proto.OK {
			f := failure{reason: r, text: text, endpoint: p.Endpoint, metric: dp.Metric}
			if keepRaw {
				f.raw = raw
			}
			d.failed = append(d.failed, f)
			continue
		}
		// The tags were built in a scratch slice: give the point its own.
		p.Tags = append([]proto.Tag(nil), p.Tags...)
		d.points = append(d.points, p)
	}
	return d, nil
}

// point checks one decoded data point in OpenTSDB's order (then
// Kestrel's) and converts it; the tags are built in scratch.
func (c *codec) point(dp *datapoint, scratch []proto.Tag, now int64) (proto.Point, []proto.Tag, proto.Reason, string) {
	p := proto.Point{Metric: dp.Metric, Type: DefaultType, Step: DefaultStep}
	if dp.Metric == "" {
		return p, scratch, proto.ReasonNoMetric, "Metric name was empty"
	}
	ts, ok := parseTimestamp(jsonString(dp.Timestamp))
	if !ok || ts <= 0 {
		return p, scratch, proto.ReasonBadJSON, "Invalid timestamp"
	}
	p.Timestamp = ts
	value := jsonString(dp.Value)
	if value == "" || value == "null" {
		return p, scratch, proto.ReasonNoValue, "Empty value"
	}
	if len(dp.Tags) == 0 {
		return p, scratch, proto.ReasonNoEndpoint, "Missing tags"
	}
	for k, v := range dp.Tags {
		if r := tagProblem(k, v); r != proto.OK {
			return p, scratch, r, "Invalid tag: " + k + "=" + v
		}
		scratch = append(scratch, proto.Tag{Key: k, Value: v})
	}
	tags, _, _ := telnet.SortTags(scratch) // a map's keys are unique
	var r proto.Reason
	if p.Value, r = parseValue(value); r != proto.OK {
		if r == proto.ReasonBadValue {
			return p, scratch, r, "Unable to parse value to a number"
		}
		return p, scratch, r, r.Text()
	}
	if p.Tags, p.Endpoint, ok = takeEndpoint(tags, c.endpointTags); !ok {
		return p, scratch, proto.ReasonNoEndpoint, c.noEndpoint
	}
	if r := proto.ValidatePoint(&p, now); r != proto.OK {
		return p, scratch, r, r.Text()
	}
	return p, scratch, proto.OK, ""
}

// jsonString returns a JSON scalar as text: a string's contents, a
// number's digits; "" when absent.
func jsonString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return strings.TrimSpace(s)
		}
	}
	return string(raw)
}

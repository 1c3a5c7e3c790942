// Package push serves the agent's HTTP API: POST /v1/push (Open-Falcon
// push body), GET /health and GET /metrics.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/publish"
	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Publisher takes accepted points; it returns after they are acknowledged
// by JetStream or safely queued for a retry.
type Publisher interface {
	Push(ctx context.Context, points []proto.Point) error
}

// Metrics of the push endpoint.
type Metrics struct {
	Rejected *prometheus.CounterVec
	Accepted prometheus.Counter
	Requests *prometheus.CounterVec // code, reason (a BadRequest for 400, else "")
}

// StatusClientClosedRequest is the code a push is counted under when its
// client went away before the reply (nginx's 499): the client's doing, not
// the agent's, so it is kept out of the 5xx an operator alerts on.
const StatusClientClosedRequest = 499

// codes are the status codes counted with an empty reason (a 400 always
// has one).
var codes = []int{http.StatusOK, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge,
	StatusClientClosedRequest, http.StatusInternalServerError, http.StatusServiceUnavailable}

// NewMetrics creates and registers the push metrics with every label value.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kestrel_agent_push_rejected_total",
			Help: "Pushed points rejected, by reason.",
		}, []string{"reason"}),
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kestrel_agent_push_accepted_total",
			Help: "Pushed points accepted (acknowledged by JetStream or queued for a retry).",
		}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kestrel_agent_push_requests_total",
			Help: "POST /v1/push requests by HTTP status code (499: the client went away first) and, for 400, by reason.",
		}, []string{"code", "reason"}),
	}
	for _, r := range proto.Reasons() {
		m.Rejected.WithLabelValues(r.String())
	}
	for _, c := range codes {
		m.Requests.WithLabelValues(strconv.Itoa(c), "")
	}
	for _, b := range badRequestReasons() {
		m.Requests.WithLabelValues(strconv.Itoa(http.StatusBadRequest), b.String())
	}
	reg.MustRegister(m.Rejected, m.Accepted, m.Requests)
	return m
}

// MaxListed bounds the rejections listed in one reply; the reply still
// gives the full count.
const MaxListed = 1000

// Handler serves POST /v1/push.
type Handler struct {
	Defaults     Defaults
	MaxBodyBytes int64
	Pub          Publisher
	M            *Metrics
	Log          *slog.Logger
	Now          func() time.Time // time.Now when nil

	rl *ratelog.Limiter
}

// NewHandler returns a push handler.
func NewHandler(d Defaults, maxBody int64, pub Publisher, m *Metrics, log *slog.Logger) *Handler {
	return &Handler{Defaults: d, MaxBodyBytes: maxBody, Pub: pub, M: m, Log: log, rl: ratelog.New(10 * time.Second)}
}

// MixedReply is the 200 reply when some items were rejected.
type MixedReply struct {
	Accepted      int         `json:"accepted"`
	RejectedCount int         `json:"rejected_count"`
	Rejected      []Rejection `json:"rejected"`
}

// count counts a request; why is set for a 400 only.
func (h *Handler) count(code int, why BadRequest) {
	reason := ""
	if why != 0 {
		reason = why.String()
	}
	h.M.Requests.WithLabelValues(strconv.Itoa(code), reason).Inc()
}

func (h *Handler) reply(w http.ResponseWriter, code int, body string) {
	h.count(code, 0)
	h.write(w, code, body)
}

func (h *Handler) badRequest(w http.ResponseWriter, why BadRequest, body string) {
	h.count(http.StatusBadRequest, why)
	h.write(w, http.StatusBadRequest, body)
}

// abandoned counts a push whose client went away before the reply, and
// logs it at INFO: nothing is wrong with the agent. queued points were
// taken (they are published; a client that pushes them again makes
// duplicates, which the judge ignores).
func (h *Handler) abandoned(w http.ResponseWriter, r *http.Request, while string, queued int) {
	if ok, suppressed := h.rl.Allow("abandoned"); ok {
		h.Log.Info("push abandoned by the client", "while", while, "points_queued", queued,
			"remote", r.RemoteAddr, "err", context.Cause(r.Context()), "suppressed", suppressed)
	}
	h.reply(w, StatusClientClosedRequest, "client closed request\n")
}

// clientGone reports whether the request's client went away: net/http
// cancels the request's context when its connection is lost or closed
// (the context has no deadline of its own).
func clientGone(r *http.Request) bool { return r.Context().Err() != nil }

func (h *Handler) write(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = fmt.Fprint(w, body)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, http.StatusMethodNotAllowed, "method not allowed: use POST\n")
		return
	}
	body, err := readBody(w, r, h.MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			h.reply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes\n", h.MaxBodyBytes))
		case clientGone(r): // the read failed because the connection did
			h.abandoned(w, r, "reading the body", 0)
		default:
			h.badRequest(w, BadRead, "cannot read body: "+err.Error()+"\n")
		}
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	points, rejected, err := Decode(body, h.Defaults, now().Unix())
	if err != nil {
		why := BadNotJSON
		var be *BodyError
		if errors.As(err, &be) {
			why = be.Reason
		}
		h.badRequest(w, why, err.Error()+"\n")
		return
	}
	for _, rj := range rejected {
		h.M.Rejected.WithLabelValues(rj.Reason).Inc()
	}
	if len(rejected) > 0 {
		if ok, suppressed := h.rl.Allow("rejected"); ok {
			h.Log.Warn("pushed points rejected", "rejected", len(rejected), "accepted", len(points),
				"first", rejected[0].Error, "suppressed", suppressed)
		}
	}
	if len(points) == 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "no valid point in body: %d items rejected\n", len(rejected))
		for i, rj := range rejected {
			if i == MaxListed {
				fmt.Fprintf(&b, "... and %d more\n", len(rejected)-MaxListed)
				break
			}
			b.WriteString(rj.Error)
			b.WriteByte('\n')
		}
		why := BadNoValidPoint
		if len(rejected) == 0 {
			b.Reset()
			b.WriteString("no valid point in body: the array is empty\n")
			why = BadEmptyArray
		}
		h.badRequest(w, why, b.String())
		return
	}
	if err := h.Pub.Push(r.Context(), points); err != nil {
		switch {
		case clientGone(r) && errors.Is(err, r.Context().Err()):
			// publish.Publisher returns the context's error only after it
			// queued the points: they are published without the client.
			h.M.Accepted.Add(float64(len(points)))
			h.abandoned(w, r, "waiting for the ack", len(points))
			return
		case errors.Is(err, publish.ErrQueueFull), errors.Is(err, publish.ErrClosed), errors.Is(err, publish.ErrDropped):
			w.Header().Set("Retry-After", "5")
			h.reply(w, http.StatusServiceUnavailable, "points not accepted, retry later: "+err.Error()+"\n")
		default:
			h.reply(w, http.StatusInternalServerError, "points not accepted: "+err.Error()+"\n")
		}
		if ok, suppressed := h.rl.Allow("refused"); ok {
			h.Log.Warn("push refused", "points", len(points), "err", err, "suppressed", suppressed)
		}
		return
	}
	h.M.Accepted.Add(float64(len(points)))
	if len(rejected) == 0 {
		h.reply(w, http.StatusOK, "success")
		return
	}
	rep := MixedReply{Accepted: len(points), RejectedCount: len(rejected), Rejected: rejected}
	if len(rep.Rejected) > MaxListed {
		rep.Rejected = rep.Rejected[:MaxListed]
	}
	b, _ := json.Marshal(rep)
	h.count(http.StatusOK, 0)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, max)
	defer rd.Close()
	return io.ReadAll(rd)
}

// HealthFunc reports whether the agent can publish, and why not.
type HealthFunc func() (ok bool, reason string)

// NewMux routes /v1/push, /health and /metrics.
func NewMux(push http.Handler, health HealthFunc, reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/v1/push", push)
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, reason := health(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, reason)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

package engine

import (
	"errors"
	"strings"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/redis/go-redis/v9"
)

// A point that was not judged is reported to the transfer in the reply's
// bitmaps (proto.PointFailures), one of three ways:
//   - moved: its series is not served here;
//   - retry: a transient failure (Redis unreachable or slow, the judge
//     stopping); the rest of its part is not tried (it would wait for
//     the same Redis) and is reported the same way;
//   - failed: a failure that will recur for this point (a Redis error
//     reply about its keys, such as WRONGTYPE on an event list; an event
//     that cannot be encoded); the part goes on with its other points.
type failure uint8

const (
	failMoved failure = iota
	failRetry
	failPermanent
)

// errPermanent marks an error that retrying cannot cure.
var errPermanent = errors.New("permanent")

// permanent wraps err as a failure that will recur.
func permanent(err error) error { return errors.Join(errPermanent, err) }

// transientReplies are Redis error replies about the server's state, not
// the keys of the point: they pass when the server recovers.
var transientReplies = []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY",
	"OOM", "MISCONF", "NOREPLICAS", "NOAUTH", "WRONGPASS", "NOPERM", "ERR max number of clients"}

// classify says how a point's error is reported.
func classify(err error) failure {
	if errors.Is(err, errMovedAll) {
		return failMoved
	}
	if errors.Is(err, errPermanent) {
		return failPermanent
	}
	var re redis.Error
	if errors.As(err, &re) && !errors.Is(err, redis.Nil) {
		msg := re.Error()
		for _, p := range transientReplies {
			if strings.HasPrefix(msg, p) {
				return failRetry
			}
		}
		return failPermanent
	}
	// Network errors, timeouts, a cancelled context: Redis may answer
	// the next time.
	return failRetry
}

// fail reports points [from, to) of part pt as not judged (how: f), with
// err as the reason when it is the request's first. Workers of several
// shards may fail points of one request at once.
func (r *request) fail(pt *part, from, to int, f failure, err error) {
	if from >= to {
		return
	}
	e := r.e
	switch f {
	case failMoved:
		e.m.PointsMoved.Add(float64(to - from))
	case failRetry:
		e.m.FailedTransient.Add(float64(to - from))
	case failPermanent:
		e.m.FailedPermanent.Add(float64(to - from))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := from; i < to; i++ {
		idx := int(pt.idx[i])
		switch f {
		case failMoved:
			r.refused = proto.BitSet(r.refused, idx)
		case failRetry:
			r.retry = proto.BitSet(r.retry, idx)
		case failPermanent:
			r.failed = proto.BitSet(r.failed, idx)
		}
	}
	if f != failMoved && (r.reason == "" || f == failPermanent && !r.reasonPermanent) {
		r.reason, r.reasonPermanent = err.Error(), f == failPermanent
	}
}

// refuse marks point i (of the request, as decoded) as not served here;
// Submit calls it before the request's parts are dispatched.
func (r *request) refuse(i int) {
	r.refused = proto.BitSet(r.refused, i)
	r.e.m.PointsMoved.Inc()
}

// replyErr returns the reply error for the request's unjudged points: nil
// when every point was judged, a MOVED reply when only moved ones, a
// POINTS reply otherwise. The request's mutex is not needed: every part
// is finished.
func (r *request) replyErr() error {
	if len(r.refused) == 0 && len(r.retry) == 0 && len(r.failed) == 0 {
		return nil
	}
	f := proto.PointFailures{Moved: r.refused, Retry: r.retry, Failed: r.failed, Reason: r.reason}
	return errors.New(f.Text())
}

// pointFailed logs, at most once per 10 s per class, a point that was
// not judged for a reason other than ownership.
func (e *Engine) pointFailed(f failure, key string, err error) {
	if f == failMoved {
		return
	}
	if f == failRetry {
		if ok, n := e.rl.Allow("point_retry"); ok {
			e.log.Warn("points not judged: transient failure, the transfer sends them again", "series", key, "err", err, "suppressed", n)
		}
		return
	}
	if ok, n := e.rl.Allow("point_failed"); ok {
		e.log.Error("point not judged: the error will recur; the transfer dead-letters it after its limit", "series", key, "err", err, "suppressed", n)
	}
}

package loadgen

import (
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

// earlyTTL is how long a judge reply that arrived before its request is
// kept waiting for that request.
const earlyTTL = time.Minute

// ConnCounters counts what happens to the observer's own connection: make
// the connection with its Options.
type ConnCounters struct {
	slowConsumer atomic.Int64
	disconnects  atomic.Int64
	asyncErrors  atomic.Int64
}

// Options are nats.Connect options that count slow consumer errors (the
// client library dropped messages), disconnects (the server closed the
// connection, e.g. a server-side slow consumer: messages are missed until
// the reconnect) and other asynchronous errors.
func (c *ConnCounters) Options() []nats.Option {
	return []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				c.slowConsumer.Add(1)
				return
			}
			c.asyncErrors.Add(1)
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { c.disconnects.Add(1) }),
	}
}

// Observer watches transfer→judge requests and the judges' replies.
//
// A request reaches the observer through the server goroutine that reads
// the transfer's connection, its reply through the one that reads the
// judge's, and the server does not order the two: it queues the request
// to the judge first (literal subscription before the observer's
// wildcard) and signals the judge's writer at once, so when that
// goroutine is descheduled between the two deliveries — common on a
// loaded machine — the judge's reply reaches the observer before the
// request. Such a reply is kept (early) and matched when its request
// arrives.
type Observer struct {
	nc        *nats.Conn
	cc        *ConnCounters
	subs      []*nats.Subscription
	ch        chan *nats.Msg
	done      chan struct{}
	stop      chan struct{}
	members   string
	judgePfx  string
	isOurs    func(p *proto.Point) (seq uint64, ok bool)
	tracker   *Tracker
	pending   map[string][]uint64 // reply subject → sequence numbers in the request
	early     map[string]early    // reply subject → a judge reply seen before its request
	lastPrune time.Time
	dec       proto.Decoder
	requests  atomic.Int64
	okReplies atomic.Int64
	errReply  atomic.Int64
	other     atomic.Int64
	undecoded atomic.Int64
	reordered atomic.Int64
	orphans   atomic.Int64 // early replies whose request never came
}

type early struct {
	data []byte
	ns   int64 // tracker time it arrived
	at   time.Time
}

// ObserverStats are the observer's counters.
type ObserverStats struct {
	Requests, OKReplies, ErrReplies, OtherReplies, Undecodable, Unanswered int64
	Reordered                                                              int64 // replies that arrived before their request (matched)
	EarlyOrphans                                                           int64 // judge replies never matched to a request
	// Evidence that the observer itself missed messages: its counts are
	// then too low, not the pipeline's.
	Dropped      int   // messages dropped by the client library (slow consumer)
	SlowConsumer int64 // slow consumer errors reported on the connection
	Disconnects  int64 // the observer's connection was lost (messages in between are missed)
	AsyncErrors  int64 // other asynchronous errors
}

// Missed reports whether the observer may have missed messages.
func (s ObserverStats) Missed() bool {
	return s.Dropped > 0 || s.SlowConsumer > 0 || s.Disconnects > 0
}

// NewObserver subscribes on nc (a connection of its own, made with
// cc.Options(); cc may be nil). isOurs says whether a point is one of this
// run's and returns its sequence number.
func NewObserver(nc *nats.Conn, cc *ConnCounters, subj proto.Subjects, t *Tracker, isOurs func(p *proto.Point) (uint64, bool)) (*Observer, error) {
	if cc == nil {
		cc = &ConnCounters{}
	}
	o := &Observer{
		nc: nc, cc: cc, ch: make(chan *nats.Msg, 1<<18), done: make(chan struct{}), stop: make(chan struct{}),
		members: subj.Members(), judgePfx: subj.Judge(""), isOurs: isOurs, tracker: t,
		pending: map[string][]uint64{}, early: map[string]early{}, lastPrune: time.Now(),
	}
	for _, s := range []string{subj.Judge("*"), "_INBOX.>"} {
		// The channel (1<<18 messages) is the pending buffer; when it is
		// full the library drops, counts it (Dropped) and reports
		// nats.ErrSlowConsumer to the error handler.
		sub, err := nc.ChanSubscribe(s, o.ch)
		if err != nil {
			o.unsubscribe()
			return nil, err
		}
		o.subs = append(o.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		o.unsubscribe()
		return nil, err
	}
	go o.loop()
	return o, nil
}

func (o *Observer) unsubscribe() {
	for _, s := range o.subs {
		_ = s.Unsubscribe()
	}
}

func (o *Observer) loop() {
	defer close(o.done)
	for {
		select {
		case m := <-o.ch:
			o.handle(m)
		case <-o.stop:
			for {
				select {
				case m := <-o.ch:
					o.handle(m)
				default:
					return
				}
			}
		}
	}
}

// isJudgeReply tells a judge's reply ("+OK", "-ERR ...") from the other
// traffic on _INBOX.> (JetStream API replies, pull status messages).
func isJudgeReply(data []byte) bool {
	return len(data) > 0 && (data[0] == '+' || data[0] == '-')
}

func (o *Observer) handle(m *nats.Msg) {
	switch {
	case m.Subject == o.members:
	case strings.HasPrefix(m.Subject, o.judgePfx):
		if m.Reply == "" {
			return
		}
		pts, err := o.dec.Decode(m.Data)
		if err != nil {
			o.undecoded.Add(1)
			return
		}
		var seqs []uint64
		for i := range pts {
			if s, ok := o.isOurs(&pts[i]); ok {
				seqs = append(seqs, s)
			}
		}
		if len(seqs) == 0 {
			return
		}
		o.requests.Add(1)
		if e, ok := o.early[m.Reply]; ok {
			delete(o.early, m.Reply)
			o.reordered.Add(1)
			o.reply(seqs, e.data, e.ns)
			return
		}
		o.pending[m.Reply] = seqs
	case strings.HasPrefix(m.Subject, "_INBOX."):
		now := o.tracker.Now()
		seqs, ok := o.pending[m.Subject]
		if !ok {
			if isJudgeReply(m.Data) {
				o.early[m.Subject] = early{data: m.Data, ns: now, at: time.Now()}
				o.prune()
			}
			return
		}
		delete(o.pending, m.Subject)
		o.reply(seqs, m.Data, now)
	}
}

func (o *Observer) reply(seqs []uint64, data []byte, ns int64) {
	err := proto.DecodeJudgeReply(data)
	switch {
	case err == nil:
		o.okReplies.Add(1)
		for _, s := range seqs {
			o.tracker.Ack(s, ns)
		}
	case len(data) > 0 && data[0] == '-':
		o.errReply.Add(1) // the transfer retries: the points are seen again
	default:
		o.other.Add(1) // e.g. a "no responders" status
	}
}

// prune forgets early replies whose request did not come within earlyTTL
// (replies to requests without points of this run, or requests the
// observer missed).
func (o *Observer) prune() {
	now := time.Now()
	if now.Sub(o.lastPrune) < earlyTTL/4 {
		return
	}
	o.lastPrune = now
	for k, e := range o.early {
		if now.Sub(e.at) > earlyTTL {
			delete(o.early, k)
			o.orphans.Add(1)
		}
	}
}

// Stop unsubscribes, handles what is queued and returns the counters.
func (o *Observer) Stop() ObserverStats {
	var dropped int
	for _, s := range o.subs {
		if d, err := s.Dropped(); err == nil {
			dropped += d
		}
	}
	o.unsubscribe()
	_ = o.nc.Flush()
	close(o.stop)
	<-o.done
	return ObserverStats{
		Requests: o.requests.Load(), OKReplies: o.okReplies.Load(), ErrReplies: o.errReply.Load(),
		OtherReplies: o.other.Load(), Undecodable: o.undecoded.Load(), Unanswered: int64(len(o.pending)),
		Reordered: o.reordered.Load(), EarlyOrphans: o.orphans.Load() + int64(len(o.early)),
		Dropped: dropped, SlowConsumer: o.cc.slowConsumer.Load(), Disconnects: o.cc.disconnects.Load(),
		AsyncErrors: o.cc.asyncErrors.Load(),
	}
}

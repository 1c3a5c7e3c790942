package loadgen

import (
	"strings"
	"sync/atomic"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

// Observer watches transfer→judge requests and the judges' replies.
// Both subscriptions feed one channel, so a request is always handled
// before its reply (one connection delivers in order).
type Observer struct {
	nc        *nats.Conn
	subs      []*nats.Subscription
	ch        chan *nats.Msg
	done      chan struct{}
	stop      chan struct{}
	members   string
	judgePfx  string
	isOurs    func(p *proto.Point) (seq uint64, ok bool)
	tracker   *Tracker
	pending   map[string][]uint64 // reply subject → sequence numbers in the request
	dec       proto.Decoder
	requests  atomic.Int64
	okReplies atomic.Int64
	errReply  atomic.Int64
	other     atomic.Int64
	undecoded atomic.Int64
}

// ObserverStats are the observer's counters.
type ObserverStats struct {
	Requests, OKReplies, ErrReplies, OtherReplies, Undecodable, Unanswered int64
	Dropped                                                                int
}

// NewObserver subscribes on nc (a connection of its own). isOurs says
// whether a point is one of this run's and returns its sequence number.
func NewObserver(nc *nats.Conn, subj proto.Subjects, t *Tracker, isOurs func(p *proto.Point) (uint64, bool)) (*Observer, error) {
	o := &Observer{
		nc: nc, ch: make(chan *nats.Msg, 1<<18), done: make(chan struct{}), stop: make(chan struct{}),
		members: subj.Members(), judgePfx: subj.Judge(""), isOurs: isOurs, tracker: t,
		pending: map[string][]uint64{},
	}
	for _, s := range []string{subj.Judge("*"), "_INBOX.>"} {
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
		if len(seqs) > 0 {
			o.requests.Add(1)
			o.pending[m.Reply] = seqs
		}
	default: // _INBOX.>
		seqs, ok := o.pending[m.Subject]
		if !ok {
			return
		}
		delete(o.pending, m.Subject)
		err := proto.DecodeJudgeReply(m.Data)
		switch {
		case err == nil:
			o.okReplies.Add(1)
			now := o.tracker.Now()
			for _, s := range seqs {
				o.tracker.Ack(s, now)
			}
		case len(m.Data) > 0 && m.Data[0] == '-':
			o.errReply.Add(1) // the transfer retries: the points are seen again
		default:
			o.other.Add(1) // e.g. a "no responders" status
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
		OtherReplies: o.other.Load(), Undecodable: o.undecoded.Load(), Unanswered: int64(len(o.pending)), Dropped: dropped,
	}
}

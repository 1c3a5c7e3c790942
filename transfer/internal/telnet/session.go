package telnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what a protocol made of one line.
type Kind uint8

// The kinds of lines.
const (
	Added     Kind = iota // a valid point went into the batch
	Rejected              // an invalid point: counted by reason, answered with an error
	Malformed             // not a command of the protocol: counted refused malformed, answered
	Answered              // a command answered (version, help)
	Ignored               // an empty line
	Quit                  // the client ends the session
)

// Outcome is what a protocol made of one line.
type Outcome struct {
	Kind   Kind
	Reason proto.Reason // Rejected: why
	// Endpoint and Metric of a rejected point, for the log (as far as
	// they were parsed).
	Endpoint, Metric string
}

// Reject returns the Outcome of an invalid point.
func Reject(r proto.Reason, endpoint, metric string) Outcome {
	return Outcome{Kind: Rejected, Reason: r, Endpoint: endpoint, Metric: metric}
}

// Protocol is one line protocol served by Sessions.
type Protocol struct {
	Listener string // the ingest listener label
	// Line handles one line (no end of line; its string lives as long as
	// b's points): a valid point is added to b (validated with
	// proto.ValidatePoint at b.Now), anything to tell the client is
	// appended to out. What a line that is not Added put in b is taken
	// back by the caller.
	Line func(line string, b *Batch, out []byte) (Outcome, []byte)
	// Unstored starts the line that tells the client the points of a read
	// were not stored: "error: " for Open-Falcon, "put: " for OpenTSDB.
	Unstored string
}

// Sessions serves one line protocol on client connections: lines are
// parsed as they arrive, the lines already read are published at once,
// and errors are answered with a line.
type Sessions struct {
	proto    Protocol
	pub      *ingest.Publisher
	maxLine  int
	maxBatch int
	timeout  time.Duration // a reply must be written within
	pool     *bufPool
	batches  sync.Pool // *Batch: a connection holds one only while it reads
	requests prometheus.Counter
	accepted prometheus.Counter
}

// NewSessions serves p with the ingest block's limits: lines up to
// max_line_bytes, at most batch_points lines per Publish.
func NewSessions(p Protocol, cfg config.Ingest, pub *ingest.Publisher) *Sessions {
	met := pub.Metrics()
	return &Sessions{proto: p, pub: pub, maxLine: cfg.MaxLineBytes, maxBatch: max(cfg.BatchPoints, 1),
		timeout: cfg.ReadTimeout, pool: newBufPool(cfg.MaxLineBytes),
		batches:  sync.Pool{New: func() any { return new(Batch) }},
		requests: met.Requests.WithLabelValues(p.Listener), accepted: met.PointsAccepted.WithLabelValues(p.Listener)}
}

// NewReader returns the line reader of a connection (its buffer from the
// pool of s).
func (s *Sessions) NewReader(c net.Conn) *Reader {
	return &Reader{rd: c, max: s.maxLine, pool: s.pool}
}

// session is one client connection.
type session struct {
	*Sessions
	c   *ingest.Conn
	r   *Reader
	b   *Batch // while reading
	out []byte
}

// Serve runs the session of c, reading with r, until the client quits or
// fails, or the server stops (the lines already read are answered first).
func (s *Sessions) Serve(c *ingest.Conn, r *Reader) {
	ss := &session{Sessions: s, c: c, r: r}
	defer r.Close()
	for {
		c.Idle()
		if err := r.Wait(); err != nil {
			ss.end(err)
			return
		}
		c.Busy()
		if !ss.read() {
			return
		}
	}
}

// read handles the lines already read (at least one), publishes their
// points and answers; false when the session is over.
func (ss *session) read() bool {
	ss.b = ss.batches.Get().(*Batch)
	ss.b.Now = time.Now().Unix()
	var quit bool
	var end error
	ss.out, quit, end = ss.proto.parse(ss.r, ss.b, ss.out, ss.maxBatch, ss.count)
	ok := ss.publish()
	ss.batches.Put(ss.b)
	ss.b = nil
	if end != nil {
		ss.end(end)
		return false
	}
	return ss.flush() && ok && !quit
}

// count counts the outcome of one line.
func (ss *session) count(o Outcome, raw []byte) {
	l := ss.proto.Listener
	switch o.Kind {
	case Added:
		ss.requests.Inc()
	case Rejected:
		ss.requests.Inc()
		ss.pub.Rejected(l, o.Reason, o.Endpoint, o.Metric)
	case Malformed:
		ss.requests.Inc()
		ss.pub.Refused(l, ingest.RefusedMalformed, lineError(raw))
	}
}

// parse reads the lines already read from r (at least one; a line begun
// is waited for) into b, at most max of them, until the client quits or
// reading fails; seen is told the outcome of each line before what it
// added to b is taken back (a point not Added).
func (p *Protocol) parse(r *Reader, b *Batch, out []byte, max int, seen func(Outcome, []byte)) ([]byte, bool, error) {
	for lines := 1; ; lines++ {
		raw, err := r.Next()
		if err != nil {
			return out, false, err
		}
		if binary(raw) {
			return out, false, errBinary
		}
		m := b.mark()
		var o Outcome
		o, out = p.Line(b.Line(raw), b, out)
		seen(o, raw)
		if o.Kind == Quit {
			return out, true, nil
		}
		if o.Kind != Added {
			b.rewind(m)
		}
		// At most max lines, good or bad: the points and the replies of
		// one read are bounded.
		if lines >= max || !r.More() {
			return out, false, nil
		}
	}
}

// Offline runs a Protocol over a stream as a session does, without a
// connection nor a Publisher, reusing its buffers from one Run to the
// next: for benchmarks and fuzzing.
type Offline struct {
	Protocol Protocol
	MaxLine  int // max_line_bytes
	MaxBatch int // lines per batch
	// After Run: what the client was told, and how many lines had each
	// Kind.
	Out   []byte
	Kinds [Quit + 1]int
	r     *Reader
	b     Batch
}

// Run parses every line of rd; each batch (the lines one read brings, at
// most MaxBatch lines) goes to publish. It returns the error that ended
// reading (nil at EOF or quit).
func (x *Offline) Run(rd io.Reader, now int64, publish func([]proto.Point)) error {
	if x.r == nil {
		x.r = NewReader(rd, x.MaxLine)
	}
	x.r.rd = rd
	x.Out, x.Kinds = x.Out[:0], [Quit + 1]int{}
	seen := func(o Outcome, _ []byte) { x.Kinds[o.Kind]++ }
	for {
		err := x.r.Wait()
		if err == nil {
			x.b.Now = now
			var quit bool
			x.Out, quit, err = x.Protocol.parse(x.r, &x.b, x.Out, x.MaxBatch, seen)
			publish(x.b.Points)
			x.b.Reset(true)
			if quit {
				err = io.EOF
			}
		}
		if err != nil {
			x.r.Close()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

var errBinary = errors.New("binary data")

// lineError is a malformed line as an error for the log: quoted, at most
// 200 bytes of it.
func lineError(raw []byte) error {
	if len(raw) > 200 {
		return fmt.Errorf("malformed line %q (%d bytes)", raw[:200], len(raw))
	}
	return fmt.Errorf("malformed line %q", raw)
}

// publish stores the batch's points; a failure is answered with a line
// that says the points were not stored and why. False when the server is
// stopping.
func (ss *session) publish() bool {
	b := ss.b
	n := len(b.Points)
	if n == 0 {
		b.Reset(true)
		return true
	}
	ss.accepted.Add(float64(n))
	err := ss.pub.Publish(context.Background(), b.Points)
	b.Reset(!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded))
	if err == nil {
		return true
	}
	ss.pub.Refused(ss.proto.Listener, ingest.RefusalOf(err), err)
	ss.out = append(ss.out, ss.proto.Unstored...)
	ss.out = append(ss.out, "retry: "...)
	ss.out = strconv.AppendInt(ss.out, int64(n), 10)
	ss.out = append(ss.out, " points not stored: "...)
	ss.out = append(ss.out, err.Error()...)
	ss.out = append(ss.out, '\n')
	return !errors.Is(err, ingest.ErrStopping)
}

// flush writes the replies; false when the client cannot take them.
func (ss *session) flush() bool {
	if len(ss.out) == 0 {
		return true
	}
	_ = ss.c.SetWriteDeadline(time.Now().Add(ss.timeout))
	_, err := ss.c.Write(ss.out)
	ss.out = ss.out[:0]
	if cap(ss.out) > maxKeptReplies {
		ss.out = nil // many errors at once: do not keep their room
	}
	return err == nil
}

// end answers and counts why the session ends.
func (ss *session) end(err error) {
	l := ss.proto.Listener
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, errTooLong):
		ss.pub.Refused(l, ingest.RefusedTooLarge, fmt.Errorf("line longer than %d bytes (ingest.max_line_bytes)", ss.maxLine))
		ss.out = fmt.Appendf(ss.out, "error: line longer than %d bytes, closing\n", ss.maxLine)
	case errors.Is(err, errBinary):
		ss.pub.Refused(l, ingest.RefusedMalformed, errors.New("binary data on a line protocol"))
		ss.out = append(ss.out, "error: binary data, closing\n"...)
	case ss.c.TimedOut(err):
		ss.pub.Refused(l, ingest.RefusedTimeout, err)
		ss.out = append(ss.out, "error: timeout, closing\n"...)
	default:
		ss.flush()
		return
	}
	if ss.flush() {
		ss.linger()
	}
}

// maxKeptReplies is the most room for replies a session keeps.
const maxKeptReplies = 4 << 10

// lingerTime and lingerBytes bound what linger discards.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// linger closes the sending side and discards what the client still
// sends for a moment: closing with unread input would reset the
// connection, and the client could lose the error line just written.
func (ss *session) linger() {
	cw, ok := ss.c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = ss.c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, ss.c, lingerBytes)
}

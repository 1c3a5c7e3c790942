package jsonrpc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
)

// conn is one client connection: serve reads and frames its requests
// (one goroutine), each call answers one of them.
type conn struct {
	c   *ingest.Conn
	s   *Server
	sem chan struct{} // one token per call being answered
	wg  sync.WaitGroup
	// last is closed when the reply of the last call dispatched is
	// written (nil before the first): the next reply waits for it.
	last   chan struct{}
	broken atomic.Bool // a reply could not be written: the connection is closed

	small [512]byte // reads while no request is being read
	buf   []byte    // from the server's pool while bytes of requests are held; buf[r:w] unread
	r, w  int
	full  bool  // the last read filled the room it had
	rerr  error // a read error met after bytes still to handle
	frame frame
}

var (
	errTooLarge  = errors.New("request exceeds max_request_bytes")
	errNotObject = errors.New("a request must be a JSON object")
)

func (cn *conn) serve() {
	defer cn.finish()
	for !cn.broken.Load() {
		c, ok, started, err := cn.next()
		if err != nil {
			if cn.readFailed(err, started) {
				cn.lingerClose()
			}
			return
		}
		cn.dispatch(c)
		if !ok {
			cn.lingerClose()
			return
		}
	}
}

// lingerTime is how long lingerClose drops what a client still sends.
const lingerTime = 500 * time.Millisecond

// lingerClose lets a last error reply reach a client that is still
// sending: closing with unread input would reset the connection under
// the reply. It waits for the replies, closes the sending side and drops
// the client's input until it closes too, lingerTime at most.
func (cn *conn) lingerClose() {
	cn.wg.Wait()
	cw, ok := cn.c.Conn.(interface{ CloseWrite() error })
	if !ok || cn.broken.Load() {
		return
	}
	_ = cw.CloseWrite()
	_ = cn.c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, cn.c.Conn)
}

// finish waits for the calls being answered and gives back the buffer.
func (cn *conn) finish() {
	cn.wg.Wait()
	if cn.buf != nil {
		cn.s.putBuf(cn.buf)
		cn.buf = nil
	}
}

// next reads the next request into a call from the pool (see
// Server.prepare, whose ok it returns); an idle connection holds none.
// started tells whether a request had begun when err came.
//
// A request is decoded where it lies in the read buffer: on the bytes
// there when it starts, then, if they end before it does, once more
// after the next read when that read did not fill the buffer (the client
// sent all it had: usually the rest of the request). Past that, the
// request is framed (its end found across reads, see frame) and decoded
// once it is whole. A request is so decoded twice at most, the first time
// a part of it.
func (cn *conn) next() (c *call, ok, started bool, err error) {
	cn.frame = frame{}
	framing, tries := false, 0
	var start time.Time
	defer func() {
		if err != nil && c != nil {
			cn.s.putCall(c)
			c = nil
		}
	}()
	for {
		if !started {
			cn.r += skipSpace(cn.buf[cn.r:cn.w])
			if cn.r == cn.w {
				cn.release()
				cn.c.Idle()
			} else {
				started, start = true, time.Now()
				cn.c.Busy()
				if cn.buf[cn.r] != '{' {
					return nil, false, true, errNotObject
				}
				c = cn.s.calls.Get().(*call)
			}
		}
		if started {
			b, limit := cn.buf[cn.r:cn.w], cn.s.cfg.MaxRequestBytes
			if !framing {
				tries++
				n, ok, whole := cn.s.prepare(c, b[:min(len(b), limit)], start)
				if whole {
					cn.r += n
					return c, ok, true, nil
				}
				framing = tries == 2
			}
			if framing {
				if n, found := cn.frame.scan(b); found {
					if n > limit {
						return c, false, true, errTooLarge
					}
					_, ok, whole := cn.s.prepare(c, b[:n], start)
					if !whole { // not met: a frame ends where its request does, or earlier when malformed
						ok = cn.s.malformed(c, errors.New("request ends after its last bracket"))
					}
					cn.r += n
					return c, ok, true, nil
				}
			}
			if len(b) > limit {
				return c, false, true, errTooLarge
			}
		}
		if cn.rerr != nil {
			return c, false, started, cn.rerr
		}
		cn.read()
		framing = framing || tries == 1 && cn.full
	}
}

// release gives the read buffer back while no request is held in it.
func (cn *conn) release() {
	if cn.buf != nil {
		cn.s.putBuf(cn.buf)
	}
	cn.buf, cn.r, cn.w = nil, 0, 0
}

// read reads what the client sent: into small while nothing is held,
// else at the end of buf, made room for (moved to its start, then grown
// up to the request limit). full tells whether the read filled the room
// it had: the client may have sent more.
func (cn *conn) read() {
	if cn.buf == nil {
		n, err := cn.c.Read(cn.small[:])
		if n > 0 {
			cn.buf = cn.s.getBuf(min(64<<10, cn.s.cfg.MaxRequestBytes+4<<10))
			cn.r, cn.w = 0, copy(cn.buf, cn.small[:n])
		}
		cn.full, cn.rerr = n == len(cn.small), err
		return
	}
	if cn.w == len(cn.buf) {
		if cn.r > 0 {
			cn.w = copy(cn.buf, cn.buf[cn.r:cn.w])
			cn.r = 0
		}
		if cn.w == len(cn.buf) {
			nb := cn.s.getBuf(min(2*len(cn.buf), cn.s.cfg.MaxRequestBytes+4<<10))
			copy(nb, cn.buf[:cn.w])
			cn.s.putBuf(cn.buf)
			cn.buf = nb
		}
	}
	n, err := cn.c.Read(cn.buf[cn.w:])
	cn.full, cn.rerr = cn.w+n == len(cn.buf), err
	cn.w += n
}

// readFailed counts what ended the connection and answers it when the
// client can be told; it reports whether it did.
func (cn *conn) readFailed(err error, started bool) bool {
	pub, what := cn.s.pub, ""
	switch {
	case errors.Is(err, errTooLarge):
		pub.Accepted(ingest.ListenerJSONRPC, 0) // a request, with no point
		pub.Refused(ingest.ListenerJSONRPC, ingest.RefusedTooLarge, err)
		what = fmt.Sprintf("request exceeds %d bytes (max_request_bytes)", cn.s.cfg.MaxRequestBytes)
	case errors.Is(err, errNotObject):
		pub.Accepted(ingest.ListenerJSONRPC, 0)
		pub.Refused(ingest.ListenerJSONRPC, ingest.RefusedMalformed, err)
		what = "malformed request: " + err.Error()
	case cn.c.TimedOut(err):
		pub.Refused(ingest.ListenerJSONRPC, ingest.RefusedTimeout, err)
		if started {
			what = fmt.Sprintf("request not received within %s (read_timeout)", cn.s.cfg.ReadTimeout)
		}
	case started && !cn.broken.Load(): // the client closed or broke the connection in the middle of a request
		pub.Refused(ingest.ListenerJSONRPC, ingest.RefusedMalformed, fmt.Errorf("request cut short: %w", err))
		if errors.Is(err, io.EOF) {
			what = "request cut short: connection closed before its end"
		}
	}
	if what == "" {
		return false
	}
	cn.dispatch(failed(what))
	return true
}

// dispatch answers c in its own goroutine, at most MaxInFlight at once:
// it publishes c's points, then writes its reply after the reply before.
func (cn *conn) dispatch(c *call) {
	cn.sem <- struct{}{}
	c.prev, c.written = cn.last, make(chan struct{})
	cn.last = c.written
	cn.wg.Go(func() {
		out := cn.s.answer(c)
		if c.prev != nil {
			<-c.prev
		}
		cn.write(out)
		close(c.written)
		cn.s.putCall(c)
		<-cn.sem
	})
}

// write sends one reply; a client that does not take it within the
// read timeout loses the connection.
func (cn *conn) write(out []byte) {
	if cn.broken.Load() {
		return
	}
	_ = cn.c.SetWriteDeadline(time.Now().Add(cn.s.cfg.ReadTimeout))
	if _, err := cn.c.Write(out); err != nil {
		cn.broken.Store(true)
		_ = cn.c.Close() // the reader stops too
	}
}

func skipSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return len(b)
}

// frame finds where a JSON object ends, across reads: it follows strings
// and brackets only (the request is checked as a whole once framed).
type frame struct {
	pos   int // next byte to look at
	depth int
	inStr bool
}

// scan looks at b (the request so far, from its '{') from where the last
// call stopped; it returns the request's length once b holds all of it.
func (f *frame) scan(b []byte) (int, bool) {
	i := f.pos
	for i < len(b) {
		if f.inStr {
			q := bytes.IndexByte(b[i:], '"')
			if q < 0 {
				i = len(b)
				break
			}
			i += q
			// The quote ends the string unless an odd number of
			// backslashes escapes it.
			n := 0
			for k := i - 1; b[k] == '\\'; k-- {
				n++
			}
			f.inStr = n%2 == 1
			i++
			continue
		}
		switch b[i] {
		case '"':
			f.inStr = true
		case '{', '[':
			f.depth++
		case '}', ']':
			if f.depth--; f.depth == 0 {
				return i + 1, true
			}
		}
		i++
	}
	f.pos = i
	return 0, false
}

package telnet

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// errTooLong: a line longer than max_line_bytes (the rest of the
// connection cannot be framed reliably: it is closed).
var errTooLong = errors.New("line too long")

// idleBuf is what a connection holds while it waits for its next line
// with nothing buffered: the big buffer goes back to the pool, so idle
// connections cost a few hundred bytes each, not a line buffer.
const idleBuf = 512

// bufPool hands out line buffers of one size (a Reader's).
type bufPool struct {
	size int
	pool sync.Pool
}

func newBufPool(maxLine int) *bufPool {
	// A buffer holds at least one whole line and its "\r\n"; more than
	// that lets one read bring many short lines.
	p := &bufPool{size: max(64<<10, maxLine+2)}
	p.pool.New = func() any { b := make([]byte, p.size); return &b }
	return p
}

// Reader reads newline-terminated lines of at most max bytes (a trailing
// "\r" is not counted) from a connection. While a connection waits for
// its next line with nothing buffered, its line buffer is back in the
// pool.
type Reader struct {
	rd    io.Reader
	max   int
	pool  *bufPool
	buf   *[]byte // nil while idle and empty
	r, w  int     // unread bytes are buf[r:w]
	full  bool    // the last read filled the room it was given: more is likely waiting
	small [idleBuf]byte
}

// NewReader reads lines of at most maxLine bytes from rd, with a buffer
// of its own (Sessions.NewReader shares a pool between connections).
func NewReader(rd io.Reader, maxLine int) *Reader {
	return &Reader{rd: rd, max: maxLine, pool: newBufPool(maxLine)}
}

// Wait blocks until at least one byte is buffered (the first byte of the
// next line) and returns the read's error otherwise.
func (lr *Reader) Wait() error {
	if lr.r < lr.w {
		return nil
	}
	lr.release()
	n, err := lr.rd.Read(lr.small[:])
	lr.full = n == len(lr.small)
	if n > 0 {
		lr.acquire()
		lr.w = copy(*lr.buf, lr.small[:n])
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// Buffered returns the bytes read and not yet consumed (valid until the
// next call).
func (lr *Reader) Buffered() []byte {
	if lr.buf == nil {
		return nil
	}
	return (*lr.buf)[lr.r:lr.w]
}

// Next returns the next line without its "\n" or "\r\n", valid until the
// next call. A last line without a newline at EOF is returned as a line;
// io.EOF comes on the next call. errTooLong when a line exceeds max bytes
// (returned as soon as more than that many arrive without a newline).
func (lr *Reader) Next() ([]byte, error) {
	lr.acquire()
	buf := *lr.buf
	scanned := lr.r
	for {
		if i := bytes.IndexByte(buf[scanned:lr.w], '\n'); i >= 0 {
			end := scanned + i
			line := buf[lr.r:end]
			lr.r = end + 1
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > lr.max {
				return nil, errTooLong
			}
			return line, nil
		}
		if lr.w-lr.r > lr.max+1 {
			return nil, errTooLong
		}
		scanned = lr.w
		if lr.w == len(buf) { // room at the end: move the line to the front
			n := copy(buf, buf[lr.r:lr.w])
			scanned -= lr.r
			lr.r, lr.w = 0, n
		}
		n, err := lr.rd.Read(buf[lr.w:])
		lr.full = n == len(buf)-lr.w
		lr.w += n
		if n > 0 {
			continue
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		if errors.Is(err, io.EOF) && lr.r < lr.w {
			line := buf[lr.r:lr.w]
			lr.r = lr.w
			if len(line) > lr.max {
				return nil, errTooLong
			}
			return line, nil
		}
		return nil, err
	}
}

// More reports whether the next line can be read without waiting for
// the client: it is buffered whole, or it is begun and the last read
// filled its room (the rest is already on its way).
func (lr *Reader) More() bool {
	if lr.buf == nil || lr.r == lr.w {
		return false
	}
	return lr.full || bytes.IndexByte((*lr.buf)[lr.r:lr.w], '\n') >= 0
}

func (lr *Reader) acquire() {
	if lr.buf == nil {
		lr.buf = lr.pool.pool.Get().(*[]byte)
		lr.r, lr.w = 0, 0
	}
}

// release gives the line buffer back when nothing is buffered.
func (lr *Reader) release() {
	if lr.buf != nil && lr.r == lr.w {
		lr.pool.pool.Put(lr.buf)
		lr.buf = nil
		lr.r, lr.w = 0, 0
	}
}

// Close gives the line buffer back (the Reader is not used again).
func (lr *Reader) Close() {
	lr.r = lr.w
	lr.release()
}

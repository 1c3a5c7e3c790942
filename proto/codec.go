package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Binary batch format, version 1 (all integers varint-encoded, see
// encoding/binary):
//
//	magic   0xCE 0x57              two bytes
//	version 0x01                   one byte
//	count   uvarint                number of points
//	point*  count times:
//	  endpoint str
//	  metric   str
//	  flags    byte                bits 0-1 counter type, bit 2 integer value
//	  step     uvarint
//	  ts       varint              delta from the previous point's timestamp (0 before the first)
//	  value    varint (integer)    or 8 bytes little-endian IEEE 754
//	  ntags    uvarint
//	  (key str, value str) * ntags
//
//	str = uvarint n; n odd: reference to string number n>>1 of this batch's
//	table; n even: a literal of n>>1 bytes follows and is appended to the table.
//
// Strings repeated within a batch (the endpoint, tag keys, metrics) are
// written once. A decoder that meets a version it does not know returns a
// *VersionError, which the caller can tell apart from ErrMalformed.
const (
	magic0 = 0xCE
	magic1 = 0x57
	// CodecVersion is the batch format this package writes.
	CodecVersion = 1
	headerLen    = 3
)

// ErrMalformed is wrapped by every decode error that is not a version error.
var ErrMalformed = errors.New("malformed batch")

// VersionError is returned for a batch written by a newer codec.
type VersionError struct{ Version uint8 }

func (e *VersionError) Error() string {
	return fmt.Sprintf("batch codec version %d is newer than this program's %d", e.Version, CodecVersion)
}

// IsVersionError reports whether err is (or wraps) a *VersionError.
func IsVersionError(err error) bool {
	var ve *VersionError
	return errors.As(err, &ve)
}

const (
	flagTypeMask = 0x03
	flagIntValue = 0x04
	maxSafeInt   = 1 << 53
)

// Encoder builds one binary batch. The zero value is ready to use; Reset
// reuses its buffers. Mark and Rewind let a caller take back the last
// point, to split batches under a size limit.
type Encoder struct {
	buf     []byte
	count   int
	lastTS  int64
	table   map[string]int
	strs    []string
	scratch [binary.MaxVarintLen64]byte
}

// Reset empties the encoder, keeping its memory.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.count = 0
	e.lastTS = 0
	clear(e.table)
	e.strs = e.strs[:0]
}

// Count returns the number of points added since Reset.
func (e *Encoder) Count() int { return e.count }

// Len returns the size in bytes of the batch Bytes would return now.
func (e *Encoder) Len() int { return headerLen + uvarintLen(uint64(e.count)) + len(e.buf) }

// Mark records the encoder's state; Rewind(m) returns to it.
type Mark struct {
	buf, count, strs int
	lastTS           int64
}

// Mark returns the current state.
func (e *Encoder) Mark() Mark {
	return Mark{buf: len(e.buf), count: e.count, strs: len(e.strs), lastTS: e.lastTS}
}

// Rewind drops every point added after m was taken.
func (e *Encoder) Rewind(m Mark) {
	for _, s := range e.strs[m.strs:] {
		delete(e.table, s)
	}
	e.strs = e.strs[:m.strs]
	e.buf = e.buf[:m.buf]
	e.count = m.count
	e.lastTS = m.lastTS
}

// Add appends one point.
func (e *Encoder) Add(p *Point) {
	e.str(p.Endpoint)
	e.str(p.Metric)
	flags := byte(p.Type) & flagTypeMask
	iv := int64(p.Value)
	isInt := float64(iv) == p.Value && iv > -maxSafeInt && iv < maxSafeInt && !(p.Value == 0 && math.Signbit(p.Value))
	if isInt {
		flags |= flagIntValue
	}
	e.buf = append(e.buf, flags)
	e.buf = binary.AppendUvarint(e.buf, uint64(uint32(p.Step)))
	e.buf = binary.AppendVarint(e.buf, p.Timestamp-e.lastTS)
	e.lastTS = p.Timestamp
	if isInt {
		e.buf = binary.AppendVarint(e.buf, iv)
	} else {
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(p.Value))
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(p.Tags)))
	for i := range p.Tags {
		e.str(p.Tags[i].Key)
		e.str(p.Tags[i].Value)
	}
	e.count++
}

func (e *Encoder) str(s string) {
	if n, ok := e.table[s]; ok {
		e.buf = binary.AppendUvarint(e.buf, uint64(n)<<1|1)
		return
	}
	if e.table == nil {
		e.table = make(map[string]int)
	}
	e.table[s] = len(e.strs)
	e.strs = append(e.strs, s)
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s))<<1)
	e.buf = append(e.buf, s...)
}

// AppendTo appends the finished batch to dst and returns it.
func (e *Encoder) AppendTo(dst []byte) []byte {
	dst = append(dst, magic0, magic1, CodecVersion)
	dst = binary.AppendUvarint(dst, uint64(e.count))
	return append(dst, e.buf...)
}

// Bytes returns the finished batch in a new slice.
func (e *Encoder) Bytes() []byte { return e.AppendTo(make([]byte, 0, e.Len())) }

// EncodeBatch encodes points as one batch.
func EncodeBatch(points []Point) []byte {
	var e Encoder
	for i := range points {
		e.Add(&points[i])
	}
	return e.Bytes()
}

// SplitBatches encodes points into batches of at most maxBytes each, in
// order. A single point larger than maxBytes is an error.
func SplitBatches(points []Point, maxBytes int) ([][]byte, error) {
	var e Encoder
	var out [][]byte
	for i := range points {
		m := e.Mark()
		e.Add(&points[i])
		if e.Len() <= maxBytes {
			continue
		}
		e.Rewind(m)
		if e.Count() == 0 {
			return nil, fmt.Errorf("point %d (%s/%s) alone encodes to more than %d bytes", i, points[i].Endpoint, points[i].Metric, maxBytes)
		}
		out = append(out, e.Bytes())
		e.Reset()
		e.Add(&points[i])
		if e.Len() > maxBytes {
			return nil, fmt.Errorf("point %d (%s/%s) alone encodes to more than %d bytes", i, points[i].Endpoint, points[i].Metric, maxBytes)
		}
	}
	if e.Count() > 0 {
		out = append(out, e.Bytes())
	}
	return out, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Decoder decodes binary batches, reusing its point and tag storage
// between calls, and interning strings across batches (up to a bound) so
// that steady-state decoding of repeated series allocates nothing.
// Points returned by Decode are valid until the next call.
type Decoder struct {
	points []Point
	tags   []Tag
	strs   []string
	intern map[string]string
	// MaxIntern bounds the intern table (default 1<<16 strings); when full
	// it is cleared.
	MaxIntern int
}

// DecodeBatch decodes one batch into freshly allocated points.
func DecodeBatch(b []byte) ([]Point, error) {
	var d Decoder
	d.MaxIntern = -1
	pts, err := d.Decode(b)
	if err != nil {
		return nil, err
	}
	return pts, nil
}

// PeekVersion returns the codec version of a batch, or an error wrapping
// ErrMalformed when b is not a Kestrel batch at all.
func PeekVersion(b []byte) (uint8, error) {
	if len(b) < headerLen || b[0] != magic0 || b[1] != magic1 {
		return 0, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	return b[2], nil
}

// BatchLen returns the number of points a batch holds, read from its
// header without decoding it; a *VersionError for a newer batch, an error
// wrapping ErrMalformed for anything that is not a batch.
func BatchLen(b []byte) (int, error) {
	v, err := PeekVersion(b)
	if err != nil {
		return 0, err
	}
	if v != CodecVersion {
		if v > CodecVersion {
			return 0, &VersionError{Version: v}
		}
		return 0, fmt.Errorf("%w: unknown version %d", ErrMalformed, v)
	}
	n, k := binary.Uvarint(b[headerLen:])
	if k <= 0 || n > uint64(len(b))/7 {
		return 0, fmt.Errorf("%w: bad point count", ErrMalformed)
	}
	return int(n), nil
}

// Decode decodes b. The returned slice and the points' tag slices are
// owned by the decoder and reused by the next call.
func (d *Decoder) Decode(b []byte) ([]Point, error) {
	v, err := PeekVersion(b)
	if err != nil {
		return nil, err
	}
	if v != CodecVersion {
		if v > CodecVersion {
			return nil, &VersionError{Version: v}
		}
		return nil, fmt.Errorf("%w: unknown version %d", ErrMalformed, v)
	}
	r := reader{b: b, off: headerLen}
	count, ok := r.uvarint()
	// Every point takes at least 7 bytes: a cheap bound against a
	// malicious count.
	if !ok || count > uint64(len(b))/7 {
		return nil, fmt.Errorf("%w: bad point count", ErrMalformed)
	}
	d.points = d.points[:0]
	d.tags = d.tags[:0]
	d.strs = d.strs[:0]
	var lastTS int64
	for i := uint64(0); i < count; i++ {
		var p Point
		if p.Endpoint, ok = d.str(&r); !ok {
			return nil, fmt.Errorf("%w: point %d: bad endpoint", ErrMalformed, i)
		}
		if p.Metric, ok = d.str(&r); !ok {
			return nil, fmt.Errorf("%w: point %d: bad metric", ErrMalformed, i)
		}
		flags, ok := r.byte()
		if !ok || flags&^(flagTypeMask|flagIntValue) != 0 || CounterType(flags&flagTypeMask) > Derive {
			return nil, fmt.Errorf("%w: point %d: bad flags", ErrMalformed, i)
		}
		p.Type = CounterType(flags & flagTypeMask)
		step, ok := r.uvarint()
		if !ok || step > math.MaxInt32 {
			return nil, fmt.Errorf("%w: point %d: bad step", ErrMalformed, i)
		}
		p.Step = int32(step)
		dts, ok := r.varint()
		if !ok {
			return nil, fmt.Errorf("%w: point %d: bad timestamp", ErrMalformed, i)
		}
		lastTS += dts
		p.Timestamp = lastTS
		if flags&flagIntValue != 0 {
			iv, ok := r.varint()
			if !ok {
				return nil, fmt.Errorf("%w: point %d: bad value", ErrMalformed, i)
			}
			p.Value = float64(iv)
		} else {
			bits, ok := r.uint64()
			if !ok {
				return nil, fmt.Errorf("%w: point %d: bad value", ErrMalformed, i)
			}
			p.Value = math.Float64frombits(bits)
		}
		ntags, ok := r.uvarint()
		if !ok || ntags > uint64(r.remaining())/2 {
			return nil, fmt.Errorf("%w: point %d: bad tag count", ErrMalformed, i)
		}
		start := len(d.tags)
		for j := uint64(0); j < ntags; j++ {
			var t Tag
			if t.Key, ok = d.str(&r); !ok {
				return nil, fmt.Errorf("%w: point %d: bad tag key", ErrMalformed, i)
			}
			if t.Value, ok = d.str(&r); !ok {
				return nil, fmt.Errorf("%w: point %d: bad tag value", ErrMalformed, i)
			}
			d.tags = append(d.tags, t)
		}
		if ntags > 0 {
			p.Tags = d.tags[start:len(d.tags):len(d.tags)]
		}
		d.points = append(d.points, p)
	}
	if r.remaining() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.remaining())
	}
	// d.tags may have grown (and moved) while decoding: re-slice every
	// point's tags from the final backing array.
	off := 0
	for i := range d.points {
		n := len(d.points[i].Tags)
		if n > 0 {
			d.points[i].Tags = d.tags[off : off+n : off+n]
		}
		off += n
	}
	return d.points, nil
}

func (d *Decoder) str(r *reader) (string, bool) {
	n, ok := r.uvarint()
	if !ok {
		return "", false
	}
	if n&1 == 1 {
		i := n >> 1
		if i >= uint64(len(d.strs)) {
			return "", false
		}
		return d.strs[i], true
	}
	l := n >> 1
	if l > uint64(r.remaining()) {
		return "", false
	}
	raw := r.b[r.off : r.off+int(l)]
	r.off += int(l)
	s := d.internBytes(raw)
	d.strs = append(d.strs, s)
	return s, true
}

func (d *Decoder) internBytes(raw []byte) string {
	if d.MaxIntern < 0 {
		return string(raw)
	}
	if s, ok := d.intern[string(raw)]; ok {
		return s
	}
	max := d.MaxIntern
	if max == 0 {
		max = 1 << 16
	}
	if d.intern == nil {
		d.intern = make(map[string]string)
	} else if len(d.intern) >= max {
		clear(d.intern)
	}
	s := string(raw)
	d.intern[s] = s
	return s
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) byte() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	c := r.b[r.off]
	r.off++
	return c, true
}

func (r *reader) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, false
	}
	r.off += n
	return v, true
}

func (r *reader) varint() (int64, bool) {
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		return 0, false
	}
	r.off += n
	return v, true
}

func (r *reader) uint64() (uint64, bool) {
	if r.remaining() < 8 {
		return 0, false
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, true
}

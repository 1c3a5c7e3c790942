package proto

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// A judge that judged some points of a request and not others answers
// "-ERR POINTS <moved> <retry> <failed> <reason>": three bitmaps over the
// request's points (bit i = byte i/8, bit i%8; "-" for none), each
// base64 (raw standard encoding), then the text of the first failure.
//   - moved: not served here (as in a MOVED reply): route again;
//   - retry: a transient failure (Redis unreachable, a timeout, the judge
//     stopping): send again; it never counts towards dead-lettering;
//   - failed: a failure that will recur (a Redis error reply such as
//     WRONGTYPE, an event that cannot be encoded): counted per point, and
//     dead-lettered after the transfer's limit.
//
// A point in none of them was judged. A reply with only moved points is
// sent as MOVED (see MovedReply), which older transfers understand.
const pointsPfx = "POINTS"

// PointFailures is the decoded form of a POINTS reply.
type PointFailures struct {
	Moved, Retry, Failed []byte
	Reason               string
}

// Text returns the error text of the reply (after "-ERR ").
func (f *PointFailures) Text() string {
	if len(f.Retry) == 0 && len(f.Failed) == 0 && len(f.Moved) > 0 {
		return MovedReply(f.Moved)
	}
	var b strings.Builder
	b.WriteString(pointsPfx)
	for _, bm := range [][]byte{f.Moved, f.Retry, f.Failed} {
		b.WriteByte(' ')
		if len(bm) == 0 {
			b.WriteByte('-')
			continue
		}
		b.WriteString(base64.RawStdEncoding.EncodeToString(bm))
	}
	b.WriteByte(' ')
	b.WriteString(f.Reason)
	return b.String()
}

// Points reports whether the judge error is a POINTS reply and decodes it.
func (e *JudgeError) Points() (*PointFailures, bool, error) {
	rest, ok := strings.CutPrefix(e.Msg, pointsPfx+" ")
	if !ok {
		return nil, false, nil
	}
	f := &PointFailures{}
	for _, dst := range []*[]byte{&f.Moved, &f.Retry, &f.Failed} {
		tok, tail, found := strings.Cut(rest, " ")
		if !found && tok == "" {
			return nil, true, fmt.Errorf("%w: POINTS reply with fewer than three bitmaps", ErrJudgeReply)
		}
		rest = tail
		if tok == "-" {
			continue
		}
		b, err := base64.RawStdEncoding.DecodeString(tok)
		if err != nil {
			return nil, true, fmt.Errorf("%w: bad POINTS bitmap %q: %v", ErrJudgeReply, tok, err)
		}
		*dst = b
	}
	f.Reason = rest
	return f, true, nil
}

// BitSet sets bit i in bm (grown as needed) and returns it.
func BitSet(bm []byte, i int) []byte {
	for len(bm) <= i/8 {
		bm = append(bm, 0)
	}
	bm[i/8] |= 1 << (i % 8)
	return bm
}

// BitHas reports whether bit i is set in bm (false past its end).
func BitHas(bm []byte, i int) bool {
	return i >= 0 && i/8 < len(bm) && bm[i/8]&(1<<(i%8)) != 0
}

package proto

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// A judge refuses the points of series it does not serve (not its own in
// its view of the ring, or gained too recently to be settled) with the
// error reply "-ERR MOVED <bitmap>": bit i (byte i/8, bit i%8) set means
// point i of the request was refused and must be routed again; an empty
// bitmap means every point was refused. The other points were judged.
const movedPfx = "MOVED"

// MovedReply returns the error text of a MOVED reply for refused (a
// bitmap over the request's points; nil = all refused).
func MovedReply(refused []byte) string {
	if len(refused) == 0 {
		return movedPfx
	}
	return movedPfx + " " + base64.RawStdEncoding.EncodeToString(refused)
}

// Moved reports whether the judge error is a MOVED reply and returns its
// bitmap (nil: every point refused).
func (e *JudgeError) Moved() (refused []byte, ok bool, err error) {
	if e.Msg != movedPfx && !strings.HasPrefix(e.Msg, movedPfx+" ") {
		return nil, false, nil
	}
	s := strings.TrimPrefix(strings.TrimPrefix(e.Msg, movedPfx), " ")
	if s == "" {
		return nil, true, nil
	}
	b, derr := base64.RawStdEncoding.DecodeString(s)
	if derr != nil {
		return nil, true, fmt.Errorf("%w: bad MOVED bitmap: %v", ErrJudgeReply, derr)
	}
	return b, true, nil
}

// MovedHas reports whether point i is refused in a MOVED bitmap (nil: all).
func MovedHas(refused []byte, i int) bool {
	if refused == nil {
		return true
	}
	return i/8 < len(refused) && refused[i/8]&(1<<(i%8)) != 0
}

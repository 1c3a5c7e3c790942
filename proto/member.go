package proto

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Member message kinds.
const (
	MemberBeat  = "beat"  // I am alive and serve requests on my subject
	MemberLeave = "leave" // I am stopping: take me out of the ring now
	// MemberEvict is published by an observer (a transfer, a judge) that
	// took judge Node out of its ring for a reason of its own (heartbeat
	// timeout, "no responders", repeated request timeouts), so every other
	// observer takes it out too. Incarnation is the judge's incarnation as
	// the observer knew it; By names the observer.
	MemberEvict = "evict"
)

// MemberMsg is what a judge publishes on the members subject about every
// second (Kind "beat") and once when it stops (Kind "leave"), and what an
// observer publishes when it takes a judge out (Kind "evict").
type MemberMsg struct {
	Node        string `json:"node"`
	Kind        string `json:"kind"`
	Incarnation int64  `json:"incarnation"`      // start time of the process, unix ns: tells a restart apart
	Seq         uint64 `json:"seq"`              // increases by one per message of one incarnation
	IntervalMS  int64  `json:"intervalMs"`       // the sender's heartbeat interval
	By          string `json:"by,omitempty"`     // evict: the observer that took the judge out
	Reason      string `json:"reason,omitempty"` // evict: why (timeout, no_responders, suspect)
}

// Encode returns the JSON form.
func (m *MemberMsg) Encode() []byte {
	b, _ := json.Marshal(m) // cannot fail: plain fields
	return b
}

// DecodeMemberMsg decodes and checks a member message.
func DecodeMemberMsg(b []byte) (MemberMsg, error) {
	var m MemberMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return MemberMsg{}, fmt.Errorf("member message: %w", err)
	}
	if err := ValidateNodeID(m.Node); err != nil {
		return MemberMsg{}, fmt.Errorf("member message: %w", err)
	}
	if m.Kind != MemberBeat && m.Kind != MemberLeave && m.Kind != MemberEvict {
		return MemberMsg{}, fmt.Errorf("member message: unknown kind %q", m.Kind)
	}
	return m, nil
}

// Judge replies. A judge answers every request with exactly one of these:
// "+OK" when every point is in its window and every alarm write is done,
// or "-ERR <reason>" when the transfer must retry the batch.
const (
	replyOK     = "+OK"
	replyErrPfx = "-ERR "
)

// JudgeReplyOK returns the success reply.
func JudgeReplyOK() []byte { return []byte(replyOK) }

// JudgeReplyError returns the error reply for err.
func JudgeReplyError(err error) []byte { return []byte(replyErrPfx + err.Error()) }

// ErrJudgeReply is wrapped by the error DecodeJudgeReply returns for a
// reply it does not understand.
var ErrJudgeReply = errors.New("unrecognised judge reply")

// JudgeError is a judge's "-ERR" reply.
type JudgeError struct{ Msg string }

func (e *JudgeError) Error() string { return "judge: " + e.Msg }

// DecodeJudgeReply returns nil for "+OK", a *JudgeError for "-ERR ...",
// and an error wrapping ErrJudgeReply otherwise.
func DecodeJudgeReply(b []byte) error {
	s := string(b)
	switch {
	case s == replyOK:
		return nil
	case len(s) >= len(replyErrPfx) && s[:len(replyErrPfx)] == replyErrPfx:
		return &JudgeError{Msg: s[len(replyErrPfx):]}
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return fmt.Errorf("%w: %q", ErrJudgeReply, s)
}

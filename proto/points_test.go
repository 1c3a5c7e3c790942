package proto

import (
	"errors"
	"testing"
)

func TestPointsReplyRoundTrip(t *testing.T) {
	f := &PointFailures{Moved: BitSet(nil, 3), Retry: BitSet(BitSet(nil, 0), 9), Failed: BitSet(nil, 17), Reason: "alarm x: WRONGTYPE Operation against a key"}
	err := DecodeJudgeReply(JudgeReplyError(errors.New(f.Text())))
	var je *JudgeError
	if !errors.As(err, &je) {
		t.Fatalf("want JudgeError, got %v", err)
	}
	if _, moved, _ := je.Moved(); moved {
		t.Fatal("a POINTS reply is not a MOVED reply")
	}
	got, ok, derr := je.Points()
	if !ok || derr != nil {
		t.Fatalf("Points() = %v %v %v", got, ok, derr)
	}
	if got.Reason != f.Reason {
		t.Errorf("reason %q, want %q", got.Reason, f.Reason)
	}
	for i := range 24 {
		if BitHas(got.Moved, i) != (i == 3) || BitHas(got.Retry, i) != (i == 0 || i == 9) || BitHas(got.Failed, i) != (i == 17) {
			t.Errorf("point %d: moved %v retry %v failed %v", i, BitHas(got.Moved, i), BitHas(got.Retry, i), BitHas(got.Failed, i))
		}
	}
}

func TestPointsReplyEmptyBitmapsAndReason(t *testing.T) {
	f := &PointFailures{Failed: []byte{1}}
	je := &JudgeError{Msg: f.Text()}
	got, ok, err := je.Points()
	if !ok || err != nil || got.Moved != nil || got.Retry != nil || !BitHas(got.Failed, 0) || got.Reason != "" {
		t.Fatalf("%q → %+v %v %v", f.Text(), got, ok, err)
	}
}

func TestPointsReplyOnlyMovedIsMOVED(t *testing.T) {
	f := &PointFailures{Moved: []byte{0b10}}
	je := &JudgeError{Msg: f.Text()}
	bm, ok, err := je.Moved()
	if !ok || err != nil || !MovedHas(bm, 1) || MovedHas(bm, 0) {
		t.Fatalf("%q: Moved() = %v %v %v", f.Text(), bm, ok, err)
	}
}

func TestPointsReplyMalformed(t *testing.T) {
	for _, msg := range []string{"POINTS ", "POINTS - -", "POINTS !! - - x", "POINTS - - @@ x"} {
		if _, ok, err := (&JudgeError{Msg: msg}).Points(); !ok || !errors.Is(err, ErrJudgeReply) {
			t.Errorf("%q: ok=%v err=%v, want a bad reply", msg, ok, err)
		}
	}
	if _, ok, _ := (&JudgeError{Msg: "POINTSX - - -"}).Points(); ok {
		t.Error("POINTSX is not a POINTS reply")
	}
}

func TestDeadLetterSubjects(t *testing.T) {
	s, _ := NewSubjects("acme.prod")
	if got := s.DeadLetter("transfer 1"); got != "acme.prod.deadletter.transfer_1" {
		t.Errorf("DeadLetter = %q", got)
	}
	if s.DeadLetterAll() != "acme.prod.deadletter.>" || s.DeadLetterStream() != "ACME_PROD_DEADLETTER" {
		t.Errorf("DeadLetterAll %q, DeadLetterStream %q", s.DeadLetterAll(), s.DeadLetterStream())
	}
}

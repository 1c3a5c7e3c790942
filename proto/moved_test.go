package proto

import (
	"errors"
	"testing"
)

func TestMovedReplyRoundTrip(t *testing.T) {
	bm := []byte{0b0000_0101, 0b1000_0000} // points 0, 2, 15
	err := DecodeJudgeReply(JudgeReplyError(errors.New(MovedReply(bm))))
	var je *JudgeError
	if !errors.As(err, &je) {
		t.Fatalf("want JudgeError, got %v", err)
	}
	got, ok, derr := je.Moved()
	if !ok || derr != nil {
		t.Fatalf("Moved() = %v, %v, %v", got, ok, derr)
	}
	for i := 0; i < 20; i++ {
		want := i == 0 || i == 2 || i == 15
		if MovedHas(got, i) != want {
			t.Errorf("point %d refused = %v, want %v", i, !want, want)
		}
	}
	all := DecodeJudgeReply(JudgeReplyError(errors.New(MovedReply(nil)))).(*JudgeError)
	if b, ok, _ := all.Moved(); !ok || b != nil || !MovedHas(b, 12345) {
		t.Fatalf("MOVED without bitmap must refuse every point: %v %v", b, ok)
	}
	other := &JudgeError{Msg: "MOVEDX"}
	if _, ok, _ := other.Moved(); ok {
		t.Fatal("MOVEDX is not a MOVED reply")
	}
	bad := &JudgeError{Msg: "MOVED !!"}
	if _, ok, err := bad.Moved(); !ok || !errors.Is(err, ErrJudgeReply) {
		t.Fatalf("bad bitmap: ok=%v err=%v", ok, err)
	}
}

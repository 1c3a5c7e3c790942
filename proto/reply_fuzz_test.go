package proto

import (
	"bytes"
	"errors"
	"testing"
)

// Whatever a judge (or anything on its subject) answers, DecodeJudgeReply,
// Moved and Points do not panic; a MOVED or POINTS reply they accept says
// the same when encoded again.
func FuzzDecodeJudgeReply(f *testing.F) {
	for _, s := range []string{
		"+OK", "-ERR ", "-ERR judge is stopping", "-ERR MOVED", "-ERR MOVED AQ", "-ERR MOVED !!",
		"-ERR POINTS - - - ", "-ERR POINTS CA AQI - redis: connection refused",
		"-ERR POINTS - - AAAC WRONGTYPE Operation against a key holding the wrong kind of value",
		"-ERR POINTS ", "-ERR POINTS - -", "-ERR POINTS  - - x", "-ERR POINTS @@ - - x", "-ERR POINTSX - - -",
		"+OK\n", "-ERR\x00MOVED", "", "-", "-ERR MOVED  AQ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := DecodeJudgeReply(b)
		if err == nil {
			if string(b) != "+OK" {
				t.Fatalf("%q decoded as +OK", b)
			}
			return
		}
		var je *JudgeError
		if !errors.As(err, &je) {
			if !errors.Is(err, ErrJudgeReply) {
				t.Fatalf("%q: %v is neither a JudgeError nor ErrJudgeReply", b, err)
			}
			return
		}
		refused, moved, merr := je.Moved()
		pf, points, perr := je.Points()
		if moved && points {
			t.Fatalf("%q is both a MOVED and a POINTS reply", b)
		}
		if moved && merr == nil {
			again := decodeError(t, MovedReply(refused))
			got, ok, err := again.Moved()
			if !ok || err != nil || !bytes.Equal(got, refused) {
				t.Fatalf("%q: MOVED %x encoded again as %q gave %x, %v, %v", b, refused, again.Msg, got, ok, err)
			}
		}
		if points && perr == nil {
			checkPoints(t, pf)
		}
	})
}

// PointFailures.Text → DecodeJudgeReply → Points (or Moved, for a reply
// with moved points only) gives back the bitmaps and the reason.
func FuzzPointFailuresRoundTrip(f *testing.F) {
	f.Add([]byte{8}, []byte{1, 2}, []byte{}, "alarm x: WRONGTYPE Operation against a key")
	f.Add([]byte{}, []byte{}, []byte{0x80}, "")
	f.Add([]byte{2}, []byte(nil), []byte(nil), "moved only")
	f.Add([]byte{}, []byte{}, []byte{}, "nothing failed")
	f.Add([]byte{0, 0}, []byte{1}, []byte{0}, "  spaces and\nnewlines - - ")
	f.Fuzz(func(t *testing.T, moved, retry, failed []byte, reason string) {
		checkPoints(t, &PointFailures{Moved: moved, Retry: retry, Failed: failed, Reason: reason})
	})
}

// checkPoints encodes pf as a judge's reply and decodes it again.
func checkPoints(t *testing.T, pf *PointFailures) {
	t.Helper()
	je := decodeError(t, pf.Text())
	if len(pf.Retry) == 0 && len(pf.Failed) == 0 && len(pf.Moved) > 0 {
		// Sent as MOVED, which older transfers understand; no reason.
		got, ok, err := je.Moved()
		if !ok || err != nil || !bytes.Equal(got, pf.Moved) {
			t.Fatalf("%+v sent as %q: Moved() = %x, %v, %v", pf, je.Msg, got, ok, err)
		}
		return
	}
	if _, ok, _ := je.Moved(); ok {
		t.Fatalf("%+v sent as %q reads as MOVED", pf, je.Msg)
	}
	got, ok, err := je.Points()
	if !ok || err != nil {
		t.Fatalf("%+v sent as %q: Points() = %+v, %v, %v", pf, je.Msg, got, ok, err)
	}
	if !bytes.Equal(got.Moved, pf.Moved) || !bytes.Equal(got.Retry, pf.Retry) || !bytes.Equal(got.Failed, pf.Failed) || got.Reason != pf.Reason {
		t.Fatalf("%+v sent as %q came back as %+v", pf, je.Msg, got)
	}
}

// decodeError decodes the reply a judge sends for the error text msg.
func decodeError(t *testing.T, msg string) *JudgeError {
	t.Helper()
	var je *JudgeError
	if err := DecodeJudgeReply(JudgeReplyError(errors.New(msg))); !errors.As(err, &je) || je.Msg != msg {
		t.Fatalf("reply for %q decoded as %v", msg, err)
	}
	return je
}

package proto

import (
	"testing"
)

// Whatever arrives on the members subject, DecodeMemberMsg does not panic;
// what it accepts is a valid message that encodes and decodes to itself.
func FuzzDecodeMemberMsg(f *testing.F) {
	for _, m := range []MemberMsg{
		{Node: "j1", Kind: MemberBeat, Incarnation: 42, Seq: 7, IntervalMS: 1000},
		{Node: "judge-2", Kind: MemberEvict, Incarnation: 1700000000123456789, By: "transfer@host1/4242", Reason: "suspect"},
		{Node: "judge_3", Kind: MemberLeave, Incarnation: -1, Seq: 1<<64 - 1},
	} {
		f.Add(m.Encode())
	}
	for _, s := range []string{
		`{"node":"judge-2","kind":"evict","incarnation":5}`,
		`{`, `{"node":"members","kind":"beat"}`, `{"node":"j1","kind":"hello"}`, `{"node":"","kind":"leave"}`,
		`{"node":"bad node","kind":"evict","by":"t1"}`, `null`, `[]`, `{"node":"j1","kind":"beat","seq":-1}`,
		`{"node":"j1","kind":"beat","by":"\ud800","reason":"\u0000\xff"}`, `{"NODE":"j1","Kind":"beat","node":"j2"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMemberMsg(b)
		if err != nil {
			if m != (MemberMsg{}) {
				t.Fatalf("%q: error %v with a non-zero message %+v", b, err, m)
			}
			return
		}
		if ValidateNodeID(m.Node) != nil || (m.Kind != MemberBeat && m.Kind != MemberLeave && m.Kind != MemberEvict) {
			t.Fatalf("%q: accepted an invalid message %+v", b, m)
		}
		again, err := DecodeMemberMsg(m.Encode())
		if err != nil || again != m {
			t.Fatalf("%q: round trip of %+v gave %+v, %v", b, m, again, err)
		}
	})
}

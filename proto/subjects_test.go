package proto

import (
	"errors"
	"strings"
	"testing"
)

func TestSubjects(t *testing.T) {
	s, err := NewSubjects("")
	if err != nil {
		t.Fatal(err)
	}
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(s.Ingest("host01.example.com"), "kestrel.ingest.host01_example_com")
	f(s.Ingest(""), "kestrel.ingest._")
	f(s.IngestAll(), "kestrel.ingest.>")
	f(s.Stream(), "KESTREL_INGEST")
	f(s.RingBucket(), "KESTREL_RING")
	f(s.Judge("node-1"), "kestrel.judge.node-1")
	f(s.Members(), "kestrel.judge.members")
	p, err := NewSubjects("acme.mon")
	if err != nil {
		t.Fatal(err)
	}
	f(p.Stream(), "ACME_MON_INGEST")
	f(p.RingBucket(), "ACME_MON_RING")
	f(p.Ingest("a b*>"), "acme.mon.ingest.a_b__")
	for _, bad := range []string{"a..b", ".a", "a b", "a.*", ">"} {
		if _, err := NewSubjects(bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
}

func TestValidateNodeID(t *testing.T) {
	for _, ok := range []string{"judge-1", "host_01-6081", "A"} {
		if err := ValidateNodeID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "members", "a.b", "a b", "a*", "x>"} {
		if err := ValidateNodeID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMemberMsg(t *testing.T) {
	m := MemberMsg{Node: "j1", Kind: MemberBeat, Incarnation: 42, Seq: 7, IntervalMS: 1000}
	got, err := DecodeMemberMsg(m.Encode())
	if err != nil || got != m {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if b := string(m.Encode()); strings.Contains(b, "by") || strings.Contains(b, "reason") {
		t.Fatalf("beat carries evict fields: %s", b)
	}
	for _, bad := range []string{`{`, `{"node":"members","kind":"beat"}`, `{"node":"j1","kind":"hello"}`, `{"node":"","kind":"leave"}`,
		`{"node":"bad node","kind":"evict","by":"t1"}`} {
		if _, err := DecodeMemberMsg([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestMemberEvictRoundTrip(t *testing.T) {
	m := MemberMsg{Node: "judge-2", Kind: MemberEvict, Incarnation: 1700000000123456789, By: "transfer@host1/4242", Reason: "suspect"}
	b := m.Encode()
	got, err := DecodeMemberMsg(b)
	if err != nil || got != m {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	want := `{"node":"judge-2","kind":"evict","incarnation":1700000000123456789,"seq":0,"intervalMs":0,"by":"transfer@host1/4242","reason":"suspect"}`
	if string(b) != want {
		t.Fatalf("wire form\n got %s\nwant %s", b, want)
	}
	// Sent by an older observer without by/reason: still an evict.
	got, err = DecodeMemberMsg([]byte(`{"node":"judge-2","kind":"evict","incarnation":5}`))
	if err != nil || got.Kind != MemberEvict || got.Incarnation != 5 || got.By != "" {
		t.Fatalf("minimal evict: %+v %v", got, err)
	}
}

func TestJudgeReply(t *testing.T) {
	if err := DecodeJudgeReply(JudgeReplyOK()); err != nil {
		t.Fatalf("OK reply: %v", err)
	}
	err := DecodeJudgeReply(JudgeReplyError(errors.New("redis down")))
	var je *JudgeError
	if !errors.As(err, &je) || je.Msg != "redis down" {
		t.Fatalf("error reply: %v", err)
	}
	if err := DecodeJudgeReply([]byte("garbage")); !errors.Is(err, ErrJudgeReply) {
		t.Fatalf("garbage reply: %v", err)
	}
}

func TestArtifactMessage(t *testing.T) {
	got := string(ArtifactMessage("kestrel-agent", "1.2.3", "abc"))
	if got != "kestrel-artifact-v1\nkestrel-agent\n1.2.3\nabc\n" {
		t.Fatalf("ArtifactMessage = %q", got)
	}
}

package proto

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the default subject prefix.
const DefaultPrefix = "kestrel"

// ConsumerTransfer is the durable pull consumer shared by every transfer.
const ConsumerTransfer = "transfer"

// MembersToken is the reserved last token of the membership subject; no
// judge node may use it as its id.
const MembersToken = "members"

// Subjects derives every NATS subject and the stream name from a prefix.
type Subjects struct {
	prefix string
}

// NewSubjects validates prefix (one or more dot-separated tokens of
// [A-Za-z0-9_-]) and returns the subjects under it. An empty prefix means
// DefaultPrefix.
func NewSubjects(prefix string) (Subjects, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	for tok := range strings.SplitSeq(prefix, ".") {
		if !validToken(tok) {
			return Subjects{}, fmt.Errorf("subject prefix %q: each dot-separated part must be non-empty and use only A-Z a-z 0-9 _ -", prefix)
		}
	}
	return Subjects{prefix: prefix}, nil
}

// Prefix returns the prefix.
func (s Subjects) Prefix() string { return s.prefix }

// Ingest returns "<prefix>.ingest.<source>", the source made one token.
func (s Subjects) Ingest(source string) string {
	return s.prefix + ".ingest." + SubjectToken(source)
}

// IngestAll returns the stream's subject filter "<prefix>.ingest.>".
func (s Subjects) IngestAll() string { return s.prefix + ".ingest.>" }

// Stream returns the ingest stream name: the upper-cased prefix (dots
// become underscores) + "_INGEST", e.g. KESTREL_INGEST.
func (s Subjects) Stream() string {
	return strings.ToUpper(strings.ReplaceAll(s.prefix, ".", "_")) + "_INGEST"
}

// RingBucket returns the name of the JetStream KV bucket that keeps the
// ring parameters: the upper-cased prefix (dots become underscores) +
// "_RING", e.g. KESTREL_RING. Transfers and judges read the same one.
func (s Subjects) RingBucket() string {
	return strings.ToUpper(strings.ReplaceAll(s.prefix, ".", "_")) + "_RING"
}

// Judge returns "<prefix>.judge.<node>".
func (s Subjects) Judge(node string) string { return s.prefix + ".judge." + node }

// Members returns "<prefix>.judge.members".
func (s Subjects) Members() string { return s.prefix + ".judge." + MembersToken }

// SubjectToken turns any string into one subject token: every character
// outside [A-Za-z0-9_-] becomes "_"; an empty string becomes "_".
func SubjectToken(s string) string {
	if s == "" {
		return "_"
	}
	if validToken(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if !tokenChar(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

// ValidateNodeID checks a judge node id: one subject token of
// [A-Za-z0-9_-], not "members".
func ValidateNodeID(id string) error {
	if !validToken(id) {
		return fmt.Errorf("node id %q must be non-empty and use only A-Z a-z 0-9 _ -", id)
	}
	if id == MembersToken {
		return fmt.Errorf("node id %q is reserved for the membership subject", id)
	}
	return nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return true
}

func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// DeadLetter returns "<prefix>.deadletter.<source>" (the source, e.g. the
// transfer's node id, made one token): where points that failed at a judge
// too often are kept for an operator.
func (s Subjects) DeadLetter(source string) string {
	return s.prefix + ".deadletter." + SubjectToken(source)
}

// DeadLetterAll returns the dead-letter stream's subject filter.
func (s Subjects) DeadLetterAll() string { return s.prefix + ".deadletter.>" }

// DeadLetterStream returns the dead-letter stream's name: the upper-cased
// prefix (dots become underscores) + "_DEADLETTER", e.g. KESTREL_DEADLETTER.
func (s Subjects) DeadLetterStream() string {
	return strings.ToUpper(strings.ReplaceAll(s.prefix, ".", "_")) + "_DEADLETTER"
}

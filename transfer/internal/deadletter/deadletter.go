// Package deadletter keeps points that a judge failed with an error that
// will recur (see forward.Config.DeadLetter) in the JetStream stream
// <PREFIX>_DEADLETTER, one message per batch (the ingest wire format,
// proto.EncodeBatch) with headers saying why, and is the
// `kestrel-transfer deadletter list|replay|purge` command over it.
//
// The stream keeps messages until an operator replays or purges them, or
// they are older than dead_letter.max_age. It refuses new messages when
// full (discard new): the transfer then keeps the points held and counts
// kestrel_transfer_dead_letter_errors_total, so nothing is dropped
// silently.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a dead-letter message.
const (
	HeaderJudge    = "Kestrel-Judge"
	HeaderReason   = "Kestrel-Reason"
	HeaderAttempts = "Kestrel-Attempts"
	HeaderTransfer = "Kestrel-Transfer"
)

// StreamConfig returns the dead-letter stream's configuration.
func StreamConfig(subj proto.Subjects, c config.DeadLetter) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        subj.DeadLetterStream(),
		Description: "Kestrel points a judge failed too often (kestrel-transfer deadletter list|replay|purge)",
		Subjects:    []string{subj.DeadLetterAll()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxBytes:    c.MaxBytes,
		MaxAge:      c.MaxAge,
		Discard:     jetstream.DiscardNew,
	}
}

// Ensure creates the stream when missing; an existing one keeps its
// settings.
func Ensure(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, c config.DeadLetter) (jetstream.Stream, error) {
	st, err := js.CreateStream(ctx, StreamConfig(subj, c))
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = js.Stream(ctx, subj.DeadLetterStream())
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", subj.DeadLetterStream(), err)
	}
	return st, nil
}

// Info says why a batch was dead-lettered.
type Info struct {
	Judge    string // the judge that failed the points
	Reason   string // its text of the last failure
	Attempts int
}

// Publisher publishes dead letters (a forward.DeadLetter).
type Publisher struct {
	js      jetstream.JetStream
	subj    proto.Subjects
	cfg     config.DeadLetter
	self    string
	subject string

	mu      sync.Mutex
	ensured bool
}

// NewPublisher returns a publisher for the transfer named self.
func NewPublisher(js jetstream.JetStream, subj proto.Subjects, c config.DeadLetter, self string) *Publisher {
	return &Publisher{js: js, subj: subj, cfg: c, self: self, subject: subj.DeadLetter(self)}
}

// Publish stores batch, creating the stream first when it is missing.
func (p *Publisher) Publish(ctx context.Context, batch []byte, info Info) error {
	if err := p.ensure(ctx); err != nil {
		return err
	}
	msg := &nats.Msg{Subject: p.subject, Data: batch, Header: nats.Header{}}
	msg.Header.Set(HeaderJudge, info.Judge)
	msg.Header.Set(HeaderReason, info.Reason)
	msg.Header.Set(HeaderAttempts, strconv.Itoa(info.Attempts))
	msg.Header.Set(HeaderTransfer, p.self)
	_, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(p.subj.DeadLetterStream()))
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		p.mu.Lock()
		p.ensured = false // deleted from outside: create it again next time
		p.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("publish to dead-letter stream %s: %w", p.subj.DeadLetterStream(), err)
	}
	return nil
}

func (p *Publisher) ensure(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ensured {
		return nil
	}
	if _, err := Ensure(ctx, p.js, p.subj, p.cfg); err != nil {
		return err
	}
	p.ensured = true
	return nil
}

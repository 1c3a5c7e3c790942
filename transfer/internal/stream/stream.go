package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go/jetstream"
)

// ClosedSubject returns the stream's only subject while it has no
// consumer: "<prefix>.ingest_closed". Nobody publishes to it; it exists
// because a stream created without subjects listens on its own name.
func ClosedSubject(subj proto.Subjects) string { return subj.Prefix() + ".ingest_closed" }

// StreamConfig returns the ingest stream's configuration as this
// transfer's config wants it, with the ingest subjects open.
func StreamConfig(subj proto.Subjects, c config.Stream) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        subj.Stream(),
		Description: "Kestrel ingest batches (agents publish, transfers consume)",
		Subjects:    []string{subj.IngestAll()},
		Retention:   jetstream.InterestPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxBytes:    c.MaxBytes,
		MaxAge:      c.MaxAge,
		Discard:     jetstream.DiscardNew,
		Duplicates:  c.DuplicateWindow,
	}
}

// ConsumerConfig returns the durable pull consumer's configuration.
func ConsumerConfig(c config.Consumer) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       proto.ConsumerTransfer,
		Description:   "Kestrel transfers (shared by every instance)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// Ensure makes the stream and the consumer exist with the stream's ingest
// subjects open (see the package doc), trying up to 5 times, and returns
// the consumer. It never changes the settings of an existing stream or
// consumer (see Apply); Differences tells how they differ from sc and cc.
// Several transfers may call it at once.
func Ensure(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, sc config.Stream, cc config.Consumer) (jetstream.Consumer, error) {
	var st State
	err := retry(ctx, func() error {
		var err error
		st, err = ensureOnce(ctx, js, subj, StreamConfig(subj, sc), ConsumerConfig(cc), func(string) {})
		return err
	})
	if err != nil {
		return nil, err
	}
	return st.Consumer, nil
}

// retry runs f up to 5 times with a growing pause, until it succeeds or
// ctx ends.
func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		if err = f(); err == nil || errors.Is(err, context.Canceled) {
			return err
		}
	}
	return err
}

// State is what one ensure round found and did.
type State struct {
	Consumer       jetstream.Consumer
	StreamConfig   jetstream.StreamConfig   // the existing stream's settings
	ConsumerConfig jetstream.ConsumerConfig // the existing consumer's settings
	// CreatedStream: this round created the stream (closed).
	CreatedStream bool
	// Recreated: the consumer was missing while the ingest subjects were
	// open (deleted from outside); this round closed them and created it.
	Recreated bool
	// Opened: this round opened the ingest subjects.
	Opened bool
}

// ensureOnce is one round: stream (created closed), consumer (created
// after closing the subjects if they were open), then open the subjects
// and check the consumer is still there. Before changing anything because
// something is missing it calls notReady with why.
func ensureOnce(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, want jetstream.StreamConfig, wantC jetstream.ConsumerConfig, notReady func(string)) (State, error) {
	var st State
	name := want.Name
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		notReady(fmt.Sprintf("stream %s does not exist: creating it", name))
		closed := want
		closed.Subjects = []string{ClosedSubject(subj)}
		s, err = js.CreateStream(ctx, closed)
		if err == nil {
			st.CreatedStream = true
		} else if s2, err2 := js.Stream(ctx, name); err2 == nil {
			// Another transfer created it first (with its settings).
			s, err = s2, nil
		}
	}
	if err != nil {
		return st, fmt.Errorf("cannot read or create stream %s: %w", name, err)
	}
	st.StreamConfig = s.CachedInfo().Config

	c, err := js.Consumer(ctx, name, wantC.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if isOpen(st.StreamConfig, subj) {
			notReady(fmt.Sprintf("consumer %s of stream %s is missing: closing the ingest subjects, recreating it", wantC.Durable, name))
			st.Recreated = true
			if st.StreamConfig, err = setSubjects(ctx, js, s, ClosedSubject(subj)); err != nil {
				return st, fmt.Errorf("cannot close the ingest subjects of stream %s: %w", name, err)
			}
		} else {
			notReady(fmt.Sprintf("consumer %s of stream %s does not exist: creating it", wantC.Durable, name))
		}
		c, err = js.CreateConsumer(ctx, name, wantC)
		if err != nil {
			// Another transfer created it first (maybe with other settings).
			if c2, err2 := js.Consumer(ctx, name, wantC.Durable); err2 == nil {
				c, err = c2, nil
			}
		}
	}
	if err != nil {
		return st, fmt.Errorf("cannot read or create consumer %s on %s: %w", wantC.Durable, name, err)
	}
	st.Consumer = c
	st.ConsumerConfig = c.CachedInfo().Config

	if !isOpen(st.StreamConfig, subj) {
		notReady(fmt.Sprintf("stream %s has no ingest subjects: opening them", name))
		if st.StreamConfig, err = setSubjects(ctx, js, s, subj.IngestAll()); err != nil {
			return st, fmt.Errorf("cannot open the ingest subjects of stream %s: %w", name, err)
		}
		st.Opened = true
		// Deleted between our check and the opening? Then the next round
		// closes the subjects again.
		if _, err := js.Consumer(ctx, name, wantC.Durable); err != nil {
			return st, fmt.Errorf("consumer %s of stream %s, checked after opening the ingest subjects: %w", wantC.Durable, name, err)
		}
	}
	return st, nil
}

// isOpen tells whether the stream listens on the ingest subjects.
func isOpen(c jetstream.StreamConfig, subj proto.Subjects) bool {
	return slices.Contains(c.Subjects, subj.IngestAll())
}

// setSubjects sets the stream's subjects to subject, keeping every other
// setting as it is now.
func setSubjects(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, subject string) (jetstream.StreamConfig, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	cfg := info.Config
	cfg.Subjects = []string{subject}
	s2, err := js.UpdateStream(ctx, cfg)
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	return s2.CachedInfo().Config, nil
}

// StreamDifferences names every stream setting of want that got does not
// have, "replicas 3 (config) != 1 (stream)"; none when equal.
func StreamDifferences(got, want jetstream.StreamConfig) []string {
	var d []string
	add := func(field string, cfg, have any) {
		d = append(d, fmt.Sprintf("%s %v (config) != %v (stream)", field, cfg, have))
	}
	if got.Replicas != want.Replicas {
		add("replicas", want.Replicas, got.Replicas)
	}
	if got.MaxBytes != want.MaxBytes {
		add("max_bytes", want.MaxBytes, got.MaxBytes)
	}
	if got.MaxAge != want.MaxAge {
		add("max_age", want.MaxAge, got.MaxAge)
	}
	if got.Duplicates != want.Duplicates {
		add("duplicate_window", want.Duplicates, got.Duplicates)
	}
	if got.Retention != want.Retention {
		add("retention", want.Retention, got.Retention)
	}
	if got.Storage != want.Storage {
		add("storage", want.Storage, got.Storage)
	}
	if got.Discard != want.Discard {
		add("discard", want.Discard, got.Discard)
	}
	return d
}

// ConsumerDifferences names every consumer setting of want that got does
// not have, "ack_wait 45s (config) != 30s (consumer)"; none when equal.
func ConsumerDifferences(got, want jetstream.ConsumerConfig) []string {
	var d []string
	add := func(field string, cfg, have any) {
		d = append(d, fmt.Sprintf("%s %v (config) != %v (consumer)", field, cfg, have))
	}
	if got.AckWait != want.AckWait {
		add("ack_wait", want.AckWait, got.AckWait)
	}
	if got.MaxAckPending != want.MaxAckPending {
		add("max_ack_pending", want.MaxAckPending, got.MaxAckPending)
	}
	if got.AckPolicy != want.AckPolicy {
		add("ack_policy", want.AckPolicy, got.AckPolicy)
	}
	if got.MaxDeliver != want.MaxDeliver {
		add("max_deliver", want.MaxDeliver, got.MaxDeliver)
	}
	if got.DeliverPolicy != want.DeliverPolicy {
		add("deliver_policy", want.DeliverPolicy, got.DeliverPolicy)
	}
	return d
}

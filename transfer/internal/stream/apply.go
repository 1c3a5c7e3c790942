package stream

import (
	"context"
	"fmt"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go/jetstream"
)

// Current returns the existing stream's and consumer's settings and how
// sc and cc differ from them. It changes nothing: a missing stream or
// consumer is an error (a transfer creates them).
func Current(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, sc config.Stream, cc config.Consumer) (st State, streamDiffs, consumerDiffs []string, err error) {
	s, err := js.Stream(ctx, subj.Stream())
	if err != nil {
		return st, nil, nil, fmt.Errorf("cannot read stream %s (a transfer creates it): %w", subj.Stream(), err)
	}
	st.StreamConfig = s.CachedInfo().Config
	c, err := js.Consumer(ctx, subj.Stream(), proto.ConsumerTransfer)
	if err != nil {
		return st, nil, nil, fmt.Errorf("cannot read consumer %s of stream %s (a transfer creates it): %w", proto.ConsumerTransfer, subj.Stream(), err)
	}
	st.Consumer, st.ConsumerConfig = c, c.CachedInfo().Config
	return st, StreamDifferences(st.StreamConfig, StreamConfig(subj, sc)), ConsumerDifferences(st.ConsumerConfig, ConsumerConfig(cc)), nil
}

// Apply writes the settings of sc and cc over the existing stream's and
// consumer's (creating them first when missing, like a transfer does) and
// returns the differences it changed; none means nothing was changed. The
// stream's subjects are left as they are (open or closed), and the
// consumer is updated in place, never deleted: nothing is lost. NATS
// refuses some changes (retention, storage, ack policy; replicas above
// the cluster size) and the error says so.
func Apply(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, sc config.Stream, cc config.Consumer) (streamDiffs, consumerDiffs []string, err error) {
	if _, err := Ensure(ctx, js, subj, sc, cc); err != nil {
		return nil, nil, err
	}
	name := subj.Stream()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read stream %s: %w", name, err)
	}
	want := StreamConfig(subj, sc)
	next := s.CachedInfo().Config
	if streamDiffs = StreamDifferences(next, want); len(streamDiffs) > 0 {
		next.Replicas, next.MaxBytes, next.MaxAge, next.Duplicates = want.Replicas, want.MaxBytes, want.MaxAge, want.Duplicates
		next.Retention, next.Storage, next.Discard = want.Retention, want.Storage, want.Discard
		if _, err := js.UpdateStream(ctx, next); err != nil {
			return nil, nil, fmt.Errorf("cannot update stream %s (%v): %w", name, streamDiffs, err)
		}
	}
	c, err := js.Consumer(ctx, name, proto.ConsumerTransfer)
	if err != nil {
		return streamDiffs, nil, fmt.Errorf("cannot read consumer %s: %w", proto.ConsumerTransfer, err)
	}
	wantC := ConsumerConfig(cc)
	nextC := c.CachedInfo().Config
	if consumerDiffs = ConsumerDifferences(nextC, wantC); len(consumerDiffs) > 0 {
		nextC.AckWait, nextC.MaxAckPending, nextC.AckPolicy = wantC.AckWait, wantC.MaxAckPending, wantC.AckPolicy
		nextC.MaxDeliver, nextC.DeliverPolicy = wantC.MaxDeliver, wantC.DeliverPolicy
		if _, err := js.UpdateConsumer(ctx, name, nextC); err != nil {
			return streamDiffs, nil, fmt.Errorf("cannot update consumer %s (%v): %w", proto.ConsumerTransfer, consumerDiffs, err)
		}
	}
	return streamDiffs, consumerDiffs, nil
}

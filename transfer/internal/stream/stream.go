// Package stream creates or updates the ingest stream and the shared
// durable consumer "transfer". Every transfer does this on start; doing it
// concurrently from several transfers is safe.
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

// StreamConfig returns the ingest stream's configuration.
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

// Ensure creates the stream and the consumer, or updates them when their
// configuration differs from ours. An existing stream or consumer that
// already has our configuration is left alone, so transfers starting
// together (or restarting) do not update it over and over. A create that
// races with another transfer's is retried (the next attempt compares).
func Ensure(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, sc config.Stream, cc config.Consumer) (jetstream.Consumer, error) {
	scfg := StreamConfig(subj, sc)
	err := retry(ctx, func() error { return ensureStream(ctx, js, scfg) })
	if err != nil {
		return nil, fmt.Errorf("cannot create or update stream %s: %w", scfg.Name, err)
	}
	ccfg := ConsumerConfig(cc)
	var cons jetstream.Consumer
	err = retry(ctx, func() error {
		var err error
		cons, err = ensureConsumer(ctx, js, scfg.Name, ccfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create or update consumer %s on %s: %w", ccfg.Durable, scfg.Name, err)
	}
	return cons, nil
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

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, want)
		return err
	case err != nil:
		return err
	}
	if sameStream(s.CachedInfo().Config, want) {
		return nil
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, stream, want.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return js.CreateConsumer(ctx, stream, want)
	case err != nil:
		return nil, err
	}
	if sameConsumer(c.CachedInfo().Config, want) {
		return c, nil
	}
	return js.UpdateConsumer(ctx, stream, want)
}

// sameStream compares the fields Kestrel sets.
func sameStream(got, want jetstream.StreamConfig) bool {
	return got.Description == want.Description && slices.Equal(got.Subjects, want.Subjects) &&
		got.Retention == want.Retention && got.Storage == want.Storage && got.Replicas == want.Replicas &&
		got.MaxBytes == want.MaxBytes && got.MaxAge == want.MaxAge && got.Discard == want.Discard &&
		got.Duplicates == want.Duplicates
}

// sameConsumer compares the fields Kestrel sets.
func sameConsumer(got, want jetstream.ConsumerConfig) bool {
	return got.Description == want.Description && got.AckPolicy == want.AckPolicy && got.AckWait == want.AckWait &&
		got.MaxDeliver == want.MaxDeliver && got.MaxAckPending == want.MaxAckPending &&
		got.DeliverPolicy == want.DeliverPolicy && got.ReplayPolicy == want.ReplayPolicy
}

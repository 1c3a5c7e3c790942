// Package stream creates or updates the ingest stream and the shared
// durable consumer "transfer". Every transfer does this on start; doing it
// concurrently from several transfers is safe.
package stream

import (
	"context"
	"errors"
	"fmt"
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

// Ensure creates or updates the stream and the consumer. A create that
// races with another transfer's is retried (the second attempt updates).
func Ensure(ctx context.Context, js jetstream.JetStream, subj proto.Subjects, sc config.Stream, cc config.Consumer) (jetstream.Consumer, error) {
	scfg := StreamConfig(subj, sc)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		if _, err = js.CreateOrUpdateStream(ctx, scfg); err == nil || errors.Is(err, context.Canceled) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create or update stream %s: %w", scfg.Name, err)
	}
	ccfg := ConsumerConfig(cc)
	var cons jetstream.Consumer
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		if cons, err = js.CreateOrUpdateConsumer(ctx, scfg.Name, ccfg); err == nil || errors.Is(err, context.Canceled) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create or update consumer %s on %s: %w", ccfg.Durable, scfg.Name, err)
	}
	return cons, nil
}

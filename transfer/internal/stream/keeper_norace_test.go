//go:build !race

package stream

import "testing"

// TestKeeperRecoveryManyTransfers: as TestKeeperRecreatesDeletedConsumer,
// with three transfers noticing the deletion and repairing at once
// (closing, creating, opening concurrently): still nothing acked after the
// closing is lost.
//
// Not built with -race: when one transfer updates the stream's subjects
// while another's request creates the consumer, the embedded
// nats-server v2.15.2 itself races (fileStore.ConsumerStore reads
// fs.cfg.Name without the lock fileStore.UpdateConfig writes it under);
// the race detector reports that in the server's code, not ours. Run it
// with `go test -run ManyTransfers ./internal/stream/`.
func TestKeeperRecoveryManyTransfers(t *testing.T) {
	t.Run("advisory", func(t *testing.T) { testRecreatesDeletedConsumer(t, 3, true) })
	t.Run("polling", func(t *testing.T) { testRecreatesDeletedConsumer(t, 3, false) })
}

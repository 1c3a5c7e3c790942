// Package forward is the transfer's data path: it pulls ingest batches
// from the shared durable consumer, validates and normalises every point,
// routes it by series key to the judge that owns it on the ring, coalesces
// points per judge into request batches, and acks an ingest message only
// when every valid point in it has been accepted by a judge.
//
//	fetcher ──msgs──▶ loop (one goroutine owns all state)
//	                   │ decode → validate → step/align → key → ring.Locate
//	                   │ per-judge batch (proto.Encoder) ─sealed at batch_points or linger─▶ request goroutine
//	                   ◀──────────────── result (+OK / -ERR / timeout / no responders) ─────┘
//	                   │ OK: every point's message count down, Ack at zero; a slow judge's limit +1
//	                   │ timeout: the judge is slow — in-flight limit halved (down to 1), backoff —
//	                   │          it stays in the ring (membership: out only after unresponsive_after)
//	                   │ failure: backoff, re-locate every point on the current ring, queue again
//	                   │ MOVED / POINTS: what was judged is done; moved and transient points re-located;
//	                   │          a permanent failure waits one retry_backoff, dead-lettered after N
//	membership ──ring changed──▶ loop: points queued for a departed judge re-located
//	           ──warm-up──────▶ loop: routes on an empty ring (every point parked) until Ready
//
// The fetcher pauses while the membership warms up (after the start and
// after every NATS reconnect, until every live judge has had time to
// heartbeat: max(membership timeout, 2 × the largest announced interval)),
// while no judge is alive, or while Config.Gate (the ring parameter check)
// is blocked, so nothing is fetched that cannot be placed on a ring every
// transfer and judge agrees on. Points already held when a warm-up starts
// are parked until it is over.
//
// Held messages are marked in progress every InProgressEvery (at most a
// third of the consumer's ack_wait), so they are never redelivered while
// this transfer lives, and are redelivered to another transfer one
// ack_wait after it dies.
//
// Files by concern: engine.go (types, New, Run), fetch.go, ingest.go
// (decode, validate), route.go (ring, per-judge queues, pump),
// requests.go (requests and their replies), failed.go (per-point failures,
// dead letters), acks.go (acks, progress marks, pools), shutdown.go.
//
// The loop is single-threaded, so none of its state needs a lock; the ring
// is an immutable snapshot read without locks.
package forward

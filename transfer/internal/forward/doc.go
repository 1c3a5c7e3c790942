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
//	                   │ OK: every point's message count down, Ack at zero
//	                   │ failure: backoff, re-locate every point on the current ring, queue again
//	membership ──ring changed──▶ loop: points queued for a departed judge re-located
//
// The fetcher pauses while no judge is alive or while Config.Gate (the
// ring parameter check) is blocked, so nothing is fetched that cannot be
// placed on a ring every transfer and judge agrees on.
//
// The loop is single-threaded, so none of its state needs a lock; the ring
// is an immutable snapshot read without locks.
package forward

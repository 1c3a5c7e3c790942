// Package engine is the judge's data path.
//
//	NATS request ──Submit──▶ decode ─┬─▶ shard 0 queue ─▶ worker 0 ─┐
//	  (one goroutine)  split by      ├─▶ shard 1 queue ─▶ worker 1 ─┼─▶ last part done ─▶ one reply
//	                   xxhash(key)   └─▶ ...                        ┘
//
// Every series belongs to one shard (xxhash of its series key modulo the
// number of workers), and one worker goroutine processes a shard's parts in
// arrival order, so the points of a series are handled serially and in
// order. For each point the worker stages it in the series window (a ring
// push that can be rolled back), evaluates the rules of its metric,
// writes every resulting alarm transition to Redis (compare-and-set, see
// package alarm) and only then keeps the staged point. When a Redis write
// fails the push is rolled back, the rest of the part is not processed,
// and the request is answered with an error: the transfer sends the batch
// again and the point is judged again.
//
// Alarm states are cached per series (one slot per rule), loaded from Redis
// the first time a slot is used; a failed or refused write reloads them.
package engine

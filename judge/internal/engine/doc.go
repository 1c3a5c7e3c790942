// Package engine is the judge's data path.
//
//	NATS request ──Submit──▶ decode ─┬─▶ shard 0 queue ─▶ worker 0 ─┐
//	  (one goroutine)  split by      ├─▶ shard 1 queue ─▶ worker 1 ─┼─▶ last part done ─▶ one reply
//	                   xxhash(key)   └─▶ ...                        ┘
//	                   refuse points of partitions not served (MOVED bitmap)
//
// Submit hashes every point's series key once (xxhash64): the hash picks
// the shard (modulo the workers) and the ring partition (modulo the
// partition count, as the transfers compute it). A point of a partition
// this judge does not serve (see package owner) is refused: the reply is
// MOVED with a bitmap of those points, the others are judged.
//
// One worker goroutine processes a shard's parts in arrival order, so the
// points of a series are handled serially. A part is first prepared
// (own.go): every point's series is found or created; a series whose
// partition is in another ownership period than the one it was filled
// under has its window dropped and its states marked unloaded (the judge
// did not own it throughout); the alarm states not loaded are read in one
// pipelined Redis round trip. Then, for each point (shard.go), the worker
// stages it in the window (a push, or an insertion in time order for a
// late point), evaluates the rules of its metric (as of the point, and for
// a late point again as of every newer point), runs each rule's alarm
// state machine and writes every resulting transition to Redis
// (transition.go; compare-and-set, see package alarm), and only then keeps
// the staged point. When a Redis write fails the window change is undone
// and the point is reported unjudged in the reply (failure.go: after a
// transient failure the rest of the part too, after a permanent one that
// point alone); the transfer sends it again.
//
// Files: engine.go (Engine, Submit, requests), own.go (ownership, prepare,
// state loads), shard.go (a worker's series and points), transition.go
// (the state machine's writes), failure.go (how unjudged points are
// reported), metrics.go (the engine's metrics, registered on the judge's
// registry by NewMetrics).
package engine

// Package ingest is what the transfer's client listeners share (JSON-RPC
// Transfer.Update, HTTP /api/push, telnet update lines, OpenTSDB put): a
// Publisher that coalesces the valid points of many small requests into
// ingest batches, publishes each to JetStream (<prefix>.ingest.<source>,
// with a Nats-Msg-Id) and tells every request when all of its points are
// stored, so a client is answered success only after the PubAck; the
// validation of a point with its rejection counted by listener and reason;
// and the metrics of the listeners.
//
// Back-pressure: the points accepted and not yet stored are bounded
// (max_pending_points); a request that finds no room within max_wait gets
// ErrBusy, which listeners turn into an error the client retries on
// (RPC error, HTTP 503 with Retry-After, a telnet error line). When
// JetStream is unavailable or the stream is full, every request whose
// points were in the failed batch gets ErrUnavailable: never a success for
// points that are not stored.
package ingest

// Package telnet serves line protocols to clients: Open-Falcon's telnet
// "update" lines (ingest.telnet, :4444) with Server, and the engine that
// package opentsdb runs its "put" lines on (Sessions, Protocol).
//
//	conn ─▶ Reader ─lines already read─▶ Protocol.Line ─▶ Batch ─Publish─▶ ingest stream
//	        (pooled buffer,                (parse, validate;    (arena: one read's
//	         max_line_bytes)                error lines ▶ out)   points, reused)
//	   ◀────────────────────────── out: error lines, "retry" when not stored ◀┘
//
// A session waits (idle timeout) for the first byte of a line, then reads
// (read timeout) every line already here — up to batch_points, without
// waiting for more — parses each into the batch, publishes the batch with
// one Publish and writes the replies. Points are thus forwarded as lines
// arrive, in batches, not only when the client closes (Open-Falcon's own
// transfer forwards on close).
//
// Replies. Open-Falcon's transfer answers nothing to an update line and
// drops a bad one silently; Kestrel still answers nothing to a good line,
// and one line to each bad one:
//
//	error: unknown command: "<cmd>"                    counted refused malformed
//	error: update takes <endpoint> <metric> ...        rejected bad_json (a line that is not a point)
//	error: invalid timestamp: "<ts>"                   rejected bad_json
//	error: <reason>: "<field>" (metric "<m>")          rejected <reason>: proto's reasons, in
//	                                                   Open-Falcon's order (bad_value, bad_step, ...)
//	error: retry: <n> points not stored: <why>         the batch was not stored (JetStream down, stream
//	                                                   full, max_pending_points for max_wait): counted
//	                                                   refused by RefusalOf; the client must resend
//
// "quit" publishes what was read and closes. A line over max_line_bytes,
// a line with a control character other than tab (binary data), and a
// line begun and not finished within read_timeout (or no line within
// idle_timeout) are answered "error: ... closing", counted (refused
// too_large, malformed, timeout), and the connection is closed; the lines
// read before are published first.
//
// An update line: update <endpoint> <metric> <timestamp> <value>
// [<counterType>] [<step>], fields separated by spaces or tabs; the
// counter type is COUNTER and the step 60 when absent; a step may be
// RRD's <heartbeat>:<min>:<max>:<step> as Open-Falcon accepts; no tags. A
// timestamp <= 0 is now (proto.ValidatePoint).
//
// Memory: a connection waiting for its next line holds a 512-byte buffer;
// one reading holds a pooled buffer of max(64 KiB, max_line_bytes+2) and a
// pooled batch (at most batch_points points and the lines they came from)
// until its points are published; replies are written once per read.
// Files: reader.go (Reader), batch.go (Batch), session.go (Sessions,
// Offline), update.go (the update protocol), server.go (Server).
package telnet

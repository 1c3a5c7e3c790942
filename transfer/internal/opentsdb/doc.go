// Package opentsdb is the OpenTSDB listener (ingest.opentsdb, :4242):
// telnet "put" lines and HTTP POST /api/put on one port, for OpenTSDB's
// clients (tcollector, scollector, collectd's write_tsdb, ...).
//
//	accept (ingest.TCPServer: max_connections, timeouts)
//	  │ first byte, as OpenTSDB tells them apart: 'A'..'Z' is an HTTP
//	  │ method (GET, POST, PUT, HEAD...), telnet commands are lower case
//	  ├─ telnet ─▶ telnet.Sessions with the put protocol (put.go)
//	  └─ HTTP ───▶ connListener ─▶ http.Server ─▶ /api/put (http.go)
//	                (the byte read is read again)
//
// A data point: the endpoint is the value of the first of
// ingest.opentsdb.endpoint_tags the point has (endpoint, then host by
// default), that tag is removed, the other tags stay tags; a point with
// none is rejected (reason empty_endpoint: "no endpoint tag"). OpenTSDB
// has no counter type nor step: every point is a GAUGE with a step of 60 s
// (the transfer raises it to min_step). Timestamps above 2^32-1 are
// milliseconds (OpenTSDB's rule: every 13-digit timestamp) and become
// seconds; a fraction is dropped ("1700000000.123" is 1700000000).
// Checks run in OpenTSDB's order, then proto.ValidatePoint's. A tag key or
// value holding '=', ',' or a space is refused: Open-Falcon's tag string
// "k=v,k=v" could not be read back.
//
// Telnet replies are OpenTSDB's: nothing for a stored put;
// "put: illegal argument: <why>" and "put: invalid value: <why>" for a bad
// one (counted rejected by proto reason; a line that is not a point — not
// enough arguments, a bad timestamp or tag — as bad_json); "unknown
// command: <cmd>.  Try `help'." (refused malformed); "version" and "help"
// answer a line; "exit" and "quit" close. A batch not stored is answered
// "put: retry: <n> points not stored: <why>". Limits and timeouts as in
// package telnet.
//
// HTTP /api/put takes one data point object or an array of them
// ({metric, timestamp, value, tags}; a value or timestamp may be a number
// or a numeric string; gzip bodies as scollector sends them). Replies, as
// OpenTSDB's: 204 when every point is stored; 400 with
// "One or more data points had errors" when some were invalid (the valid
// ones are stored); with ?summary 200 {"success":N,"failed":M} (400 when
// M > 0), with ?details the same plus "errors":[{"datapoint":{...},
// "error":"..."}]; 400 for a body that is not JSON of that shape (nothing
// stored) or holds no point; 413 over max_request_bytes; 405 for another
// method. A success is answered only after Publish returned nil for every
// valid point; when the stream cannot store them (or the transfer is busy
// or stopping) the answer is 503 with Retry-After, never a 2xx.
package opentsdb

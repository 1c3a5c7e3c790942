// Package jsonrpc is the transfer's Open-Falcon JSON-RPC listener: the
// wire format of Go's net/rpc/jsonrpc (JSON-RPC 1.0, a stream of request
// objects on a long-lived TCP connection) with the two methods of
// Open-Falcon's transfer, Transfer.Update and Transfer.Ping, so stock
// falcon-agents and Open-Falcon's client code push to Kestrel unchanged.
//
// It is Kestrel's own codec, not the reflection-based net/rpc server:
// one connection is read by one goroutine, which frames each request,
// then parses it and decodes its points in one pass
// (proto.MVDecoder.DecodeRPCRequest: no allocation per point) into a
// call; each call then
// publishes in its own goroutine, so that the requests a client pipelines
// are batched together, and writes its reply after the reply of the call
// before it: replies go out in request order.
//
//	conn ──read──▶ frame ─▶ parse ─▶ decode ─▶ call ──Publish──▶ ingest.Publisher ──▶ JetStream
//	  ▲                                          │ (at most MaxInFlight per connection)
//	  └──────────── reply, in request order ◀────┘ after the PubAck of its points
//
// A Transfer.Update reply is "ok" only after every valid point of the
// request is stored; Total counts every item, Invalid the rejected ones
// (Open-Falcon's counting). When the points cannot be stored the client
// gets an RPC error (falcon-agent sends again to the next transfer).
//
// Limits (ingest.TCPServer and this package): max_connections,
// idle_timeout between requests, read_timeout from the first byte of a
// request to its last, max_request_bytes per request. A request over the
// limit, malformed JSON, a request cut short or too slow is answered with
// an error (id null when it could not be read) and the connection is
// closed, as net/rpc closes on a request it cannot decode. Every refusal
// and every rejected point is counted by the publisher under the
// listener "jsonrpc".
package jsonrpc

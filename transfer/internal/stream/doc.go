// Package stream owns the ingest stream <PREFIX>_INGEST and the durable
// pull consumer "transfer" that every transfer shares.
//
// The stream has interest retention: a message stored while the stream
// has no consumer is acknowledged to its publisher and discarded at once
// (and its Nats-Msg-Id is remembered, so the publisher's retry is a
// "duplicate" too). So the stream listens on the ingest subjects only
// while the consumer exists; otherwise its only subject is a placeholder
// nobody publishes to, and a publisher on <prefix>.ingest.* gets "no
// responders" and keeps its batch:
//
//	no stream          publish: no responders (kept, retried)
//	   │ create stream with subjects [<prefix>.ingest_closed]
//	closed             publish: no responders (kept, retried)
//	   │ create consumer "transfer"
//	   │ set subjects [<prefix>.ingest.>], check the consumer is still there
//	open               publish: PubAck, stored for the consumer
//
//	consumer deleted from outside (open, no consumer: PubAck and discarded = lost)
//	   │ Keeper notices: on the deletion advisory, or its next check (≤1.2s)
//	   │ set subjects [<prefix>.ingest_closed]      closed again: nothing lost from here
//	   │ create consumer, open; kestrel_transfer_consumer_recreated_total +1, logged
//	open
//
// Every step is idempotent and re-checks what it finds, so several
// transfers doing it at once, or a transfer that dies between two steps,
// leave the stream closed (never open without a consumer); the next
// transfer's round, or any running transfer's Keeper, finishes the job.
//
// Settings (stream replicas, max_bytes, max_age, duplicate_window;
// consumer ack_wait, max_ack_pending) are those of the transfer that
// creates the stream or consumer. After that the existing settings win: a
// transfer whose config differs runs with them, logs a warning naming
// every differing field and sets kestrel_transfer_stream_config_mismatch
// {object="stream"|"consumer"} to 1. Only Apply (`kestrel-transfer stream
// apply`) changes existing settings.
package stream

// Package loadgen is kestrel-loadgen: it simulates N agents × M series
// publishing binary batches to the ingest stream at a target rate and
// measures what a running transfer + judge pipeline does with them.
//
// Every point carries a unique sequence number as its value. The load
// generator watches, with core NATS subscriptions, the requests transfers
// send to judges (<prefix>.judge.*: decode the batch, remember the
// request's reply subject and the sequence numbers in it) and the judges'
// replies (_INBOX.>: "+OK" on a remembered reply subject acknowledges
// those points; a reply that arrives before its request — the server does
// not order the two for a third subscriber — is kept and matched). From
// that it reports throughput, publish-to-judge-ack latency, and CPU
// seconds per million points of transfer and judge
// (process_cpu_seconds_total scraped before and after). It drains until
// the transfer consumer has nothing pending or un-acked, then classifies
// every point without a judge acknowledgement by its stream message:
// lost when the stream no longer holds it, held when it does; and it
// cross-checks the judges' points-received counters and reports the
// observer's own drops, slow consumer errors and disconnects.
package loadgen

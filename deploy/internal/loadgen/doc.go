// Package loadgen is kestrel-loadgen: it simulates N agents × M series
// publishing binary batches to the ingest stream at a target rate and
// measures what a running transfer + judge pipeline does with them.
//
// Every point carries a unique sequence number as its value. The load
// generator watches, with core NATS subscriptions, the requests transfers
// send to judges (<prefix>.judge.*: decode the batch, remember the
// request's reply subject and the sequence numbers in it) and the judges'
// replies (_INBOX.>: "+OK" on a remembered reply subject acknowledges
// those points). From that it reports throughput, publish-to-judge-ack
// latency, points lost, and CPU seconds per million points of transfer
// and judge (process_cpu_seconds_total scraped before and after).
package loadgen

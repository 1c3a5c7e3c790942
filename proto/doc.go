// Package proto is Kestrel's contract: the point and its compact binary batch
// codec (agent → INGEST, transfer → judge), the Open-Falcon JSON MetricValue
// codec used at the edges, series keys and Open-Falcon tag handling, point
// validation with a closed set of rejection reasons, NATS subject and stream
// names, the judge membership heartbeat, the judge reply, the Open-Falcon
// alarm event written to Redis, and the ops-meta heartbeat types.
//
// It depends on nothing but the standard library, and every other module of
// the repository depends on it.
package proto

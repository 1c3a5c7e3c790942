// Package launch is the kestrel-run launcher: it runs a whole Kestrel
// pipeline on one machine (embedded NATS with JetStream, Redis, transfer,
// judge and agent as supervised child processes), prints alarm events as
// they arrive in Redis, and stops everything in order.
//
// Start order: port checks, NATS (in process), Redis (an existing one on
// the configured address if it answers PING, else a redis-server child),
// transfer, judge, agent. Stop order: agent, transfer, judge, NATS, the
// Redis child (only if the launcher started it).
package launch

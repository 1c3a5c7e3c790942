// Package spawn starts Kestrel's processes as children and knows when they
// are ready: what kestrel-run, kestrel-loadgen -spawn and the end-to-end
// tests share.
//
//	Child       one process, output to a log file (stdout optionally to a
//	            writer), in its own process group; Stop = SIGTERM, then
//	            SIGKILL to the group after a timeout
//	WaitReady   poll a readiness check until it holds, the child exits
//	            (ErrDied) or the wait ends
//	Spawner     start a Spec on a port that was free a moment ago, ready
//	            only when the server answering there is the child (the
//	            socket is the child's, or Redis' INFO process_id is its
//	            pid); a child that lost its port to another process is
//	            started again on another one
//	probes      FreePort, TCPUp, HTTPOK/HTTPCheck, HTTPAnswers, HealthOK,
//	            RedisPing, RedisProcessID
//	TailFile    the last lines of a child's log, for error messages
package spawn

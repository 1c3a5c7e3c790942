// Package rollouttest holds the end-to-end tests of ops-updater: real
// ops-meta and ops-updater binaries (built by TestMain), real HTTP, real
// tarballs signed with "ops-meta sign", the real agent/package/control
// script driving a stand-in agent process, several updaters rolling out
// in waves, refusals, SIGKILL in the middle of an install, and the agent
// packaging script. It has no non-test code.
package rollouttest

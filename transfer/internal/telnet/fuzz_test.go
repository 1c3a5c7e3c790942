package telnet_test

import (
	"testing"

	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet/telnettest"
)

// FuzzUpdateLines: arbitrary bytes through the update protocol as a
// session reads them (see telnettest.Fuzz).
func FuzzUpdateLines(f *testing.F) {
	telnettest.FuzzProtocol(f, telnet.Update,
		"update h m 1700000000 1\nupdate h m 0 2 GAUGE 30\n",
		"update h m 1 2 COUNTER 600:0:U:300\nquit\nupdate x y 1 1\n",
		"update h m 1 abc gauge x\r\nfoo\n\n",
		"update h\x00 m 1 2\n",
		"update h m 99999999999 1e400 DERIVE -1\n")
}

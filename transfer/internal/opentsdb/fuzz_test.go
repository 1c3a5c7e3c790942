package opentsdb

import (
	"testing"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet/telnettest"
)

// FuzzPutLines: arbitrary bytes through the put protocol as a session
// reads them (see telnettest.Fuzz).
func FuzzPutLines(f *testing.F) {
	telnettest.FuzzProtocol(f, Protocol([]string{"endpoint", "host"}),
		"put sys.cpu.user 1699999990 42.5 host=web01 cpu=0\nput m 1699999990123 1 endpoint=e host=h\n",
		"put m 1699999990.5 1e3 host=h a=1 a=1\nversion\nhelp\nexit\nput m 1 1 host=h\n",
		"put m 1 x host\r\nput m 0 1 =h\nput m 1 1 host=a,b host=c\n",
		"put m 99999999999999999 NaN host=h\x7f\nGET / HTTP/1.1\n")
}

// FuzzDecodePut: arbitrary /api/put bodies never panic, and every point
// decoded is valid and survives the batch codec.
func FuzzDecodePut(f *testing.F) {
	c := newCodec([]string{"endpoint", "host"}, "v1")
	telnettest.Fuzz(f, func(data []byte, publish func([]proto.Point)) []byte {
		d, err := c.decode(data, telnettest.FuzzNow, true)
		if err == nil && len(d.points)+len(d.failed) == 0 {
			panic("no error and no data point")
		}
		publish(d.points)
		return nil
	},
		`{"metric":"sys.cpu.nice","timestamp":1699999990,"value":18,"tags":{"host":"web01","dc":"lga"}}`,
		`[{"metric":"m","timestamp":"1699999990000","value":"1.5","tags":{"endpoint":"e","host":"h"}},7,null,{}]`,
		`[{"metric":"m","timestamp":1.5,"value":true,"tags":{"host":"a b","":"x"}}]`,
		`[]`, `{`, `"x"`)
}

package natsserver

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartJetStream(t *testing.T) {
	s, err := Start(Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), MaxPayload: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.MaxPayload() != 2<<20 {
		t.Errorf("max payload %d", nc.MaxPayload())
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
}

func TestStartErrors(t *testing.T) {
	for _, c := range []Config{
		{Addr: "nonsense", StoreDir: t.TempDir()},
		{Addr: "127.0.0.1:0"},
		{Addr: "127.0.0.1:x", StoreDir: t.TempDir()},
		{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), MaxPayload: -1},
	} {
		if s, err := Start(c); err == nil {
			s.Shutdown()
			t.Errorf("Start(%+v): no error", c)
		}
	}
}

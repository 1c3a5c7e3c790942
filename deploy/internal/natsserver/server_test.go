package natsserver

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestLoadFileOverrides(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nats.conf")
	conf := "server_name: a\nlisten: 127.0.0.1:4333\nhttp: 127.0.0.1:8333\nmax_payload: 2MB\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := LoadFile(path, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Port != 4333 || opts.HTTPPort != 8333 || opts.MaxPayload != 2<<20 || opts.JetStream {
		t.Errorf("from the file: port %d http %d max_payload %d jetstream %v", opts.Port, opts.HTTPPort, opts.MaxPayload, opts.JetStream)
	}
	opts, err = LoadFile(path, Overrides{Addr: "0.0.0.0:0", StoreDir: dir, MaxPayload: 1 << 20, HTTPAddr: "0.0.0.0:9000"})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Host != "0.0.0.0" || opts.Port != -1 || !opts.JetStream || opts.StoreDir != dir || opts.MaxPayload != 1<<20 || opts.HTTPHost != "0.0.0.0" || opts.HTTPPort != 9000 {
		t.Errorf("overridden: %s:%d jetstream %v %s max_payload %d http %s:%d", opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.MaxPayload, opts.HTTPHost, opts.HTTPPort)
	}
	if _, err := LoadFile(path, Overrides{HTTPAddr: "x"}); err == nil {
		t.Error("a bad -http override: no error")
	}
}

// A listener the library cannot open is its fatal error, reported by
// Start at once (not after the ready timeout).
func TestStartFatal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	_, err = Start(Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), HTTPAddr: l.Addr().String(), Ready: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "monitor") {
		t.Fatalf("monitoring port in use: err %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the error took %s", took)
	}
}

package natsconn

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/agent/internal/natstest"
	"github.com/nats-io/nats-server/v2/server"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConnectWithCredentials(t *testing.T) {
	cases := []struct {
		name string
		srv  func(*server.Options)
		cfg  func(*config.NATS)
	}{
		{"token", func(o *server.Options) { o.Authorization = "s3cret" }, func(c *config.NATS) { c.Token = "s3cret" }},
		{"user password", func(o *server.Options) { o.Username, o.Password = "agent", "pw" }, func(c *config.NATS) { c.User, c.Password = "agent", "pw" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.StartWith(t, natstest.Option(tc.srv))
			cfg := config.NATS{URLs: []string{srv.URL()}, ConnectTimeout: config.Duration(2 * time.Second)}
			tc.cfg(&cfg)
			nc, err := Connect(cfg, "test", discard)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			deadline := time.Now().Add(10 * time.Second)
			for !nc.IsConnected() {
				if time.Now().After(deadline) {
					t.Fatalf("not connected: %v", nc.LastError())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// With RetryOnFailedConnect the agent starts while NATS is down.
func TestConnectWhileServerDown(t *testing.T) {
	nc, err := Connect(config.NATS{URLs: []string{"nats://127.0.0.1:1"}, ConnectTimeout: config.Duration(time.Second)}, "test", discard)
	if err != nil {
		t.Fatalf("connect must not fail while the server is down: %v", err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected to nothing")
	}
}

func TestOptionErrorsNameTheField(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		cfg  config.NATS
		want string
	}{
		{config.NATS{NkeySeedFile: missing}, "nats.nkey_seed_file"},
		{config.NATS{CredsFile: missing}, "nats.creds_file"},
		{config.NATS{TLS: config.TLS{CAFile: missing}}, "nats.tls.ca_file"},
		{config.NATS{TLS: config.TLS{CertFile: missing, KeyFile: missing}}, "nats.tls.cert_file"},
	}
	for _, tc := range cases {
		_, err := Options(tc.cfg, "test", discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want error naming %s, got %v", tc.want, err)
		}
	}
}

package natsconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// pki is a throw-away CA with a server and a client certificate.
type pki struct {
	ca         *x509.Certificate
	caKey      *ecdsa.PrivateKey
	dir        string
	server     tls.Certificate
	caFile     string
	clientCert string
	clientKey  string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.caKey = newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	sder, skey := p.issue(t, 2, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{sder}, PrivateKey: skey}
	cder, ckey := p.issue(t, 3, x509.ExtKeyUsageClientAuth)
	p.clientCert = p.write(t, "client.pem", "CERTIFICATE", cder)
	kder, err := x509.MarshalECPrivateKey(ckey)
	if err != nil {
		t.Fatal(err)
	}
	p.clientKey = p.write(t, "client-key.pem", "EC PRIVATE KEY", kder)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *pki) issue(t *testing.T, serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// A server that requires TLS with client certificates accepts the
// connection built from the tls block.
func TestConnectWithTLS(t *testing.T) {
	p := newPKI(t)
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	s := startServer(t, func(o *server.Options) {
		o.TLS, o.TLSVerify = true, true
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	})
	c := config(s.ClientURL())
	c.TLS = TLS{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}
	nc, err := Connect(t.Context(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := WaitConnected(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	if !nc.TLSRequired() {
		t.Error("not a TLS connection")
	}
}

func TestTLSConfig(t *testing.T) {
	if tc, err := (TLS{}).Config("nats.tls"); tc != nil || err != nil {
		t.Errorf("empty block: %v, %v", tc, err)
	}
	p := newPKI(t)
	tc, err := TLS{CAFile: p.caFile, ServerName: "nats.example", CertFile: p.clientCert, KeyFile: p.clientKey}.Config("redis.tls")
	if err != nil {
		t.Fatal(err)
	}
	if tc.ServerName != "nats.example" || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("unexpected config %+v", tc)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (TLS{CAFile: notPEM}).Config("redis.tls"); err == nil || !strings.Contains(err.Error(), "redis.tls.ca_file: "+notPEM+" holds no PEM") {
		t.Errorf("want an error naming redis.tls.ca_file, got %v", err)
	}
	if errs := (TLS{KeyFile: "k"}).Validate("redis.tls"); len(errs) != 1 || errs[0].Field != "redis.tls" {
		t.Errorf("Validate: %v", errs)
	}
}

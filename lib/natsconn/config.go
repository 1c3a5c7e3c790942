package natsconn

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kestrel-mon/kestrel/proto"
)

// Config is the `nats:` block every Kestrel binary reads.
type Config struct {
	// URLs: nats://, tls://, ws:// or wss:// URLs, or host[:port]
	// (read as nats://host:4222). An entry may hold several URLs
	// separated by commas.
	URLs          []string `yaml:"urls"`
	SubjectPrefix string   `yaml:"subject_prefix"`
	// At most one of user+password, token, nkey_seed_file, creds_file.
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	Token        string `yaml:"token"`
	NkeySeedFile string `yaml:"nkey_seed_file"`
	CredsFile    string `yaml:"creds_file"`
	TLS          TLS    `yaml:"tls"`
	// ConnectTimeout bounds one connection attempt (dial and handshake).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Defaults of the nats block.
const (
	DefaultURL            = "nats://127.0.0.1:4222"
	DefaultConnectTimeout = 5 * time.Second
)

// Default returns the nats block with every default filled in.
func Default() Config {
	return Config{URLs: []string{DefaultURL}, SubjectPrefix: proto.DefaultPrefix, ConnectTimeout: DefaultConnectTimeout}
}

// FieldError is one problem with one field of a config block. Field is
// the field's path ("nats.urls[1]"); a caller puts its file name in front.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate returns every problem of the block (none: nil), each naming
// its field under "nats". A malformed URL is caught here, at load, instead
// of being retried for ever.
func (c *Config) Validate() []FieldError {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.URLs) == 0 {
		bad("nats.urls", "at least one URL is required")
	}
	for i, u := range c.URLs {
		if err := checkURLs(u); err != nil {
			bad(fmt.Sprintf("nats.urls[%d]", i), "%v", err)
		}
	}
	if _, err := proto.NewSubjects(c.SubjectPrefix); err != nil {
		bad("nats.subject_prefix", "%v", err)
	}
	creds := 0
	if c.User != "" || c.Password != "" {
		creds++
		if c.User == "" {
			bad("nats.user", "is required with nats.password")
		}
	}
	for _, s := range []string{c.Token, c.NkeySeedFile, c.CredsFile} {
		if s != "" {
			creds++
		}
	}
	if creds > 1 {
		bad("nats", "give only one of user/password, token, nkey_seed_file, creds_file")
	}
	errs = append(errs, c.TLS.Validate("nats.tls")...)
	if c.ConnectTimeout <= 0 {
		bad("nats.connect_timeout", "must be > 0")
	}
	return errs
}

// checkURLs checks one entry of nats.urls the way nats.go reads it: a
// comma-separated list of URLs, each trimmed of spaces, empty ones left out.
func checkURLs(entry string) error {
	n := 0
	for part := range strings.SplitSeq(entry, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		if err := checkURL(part); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("is empty")
	}
	return nil
}

// checkURL reports what makes s unusable as a NATS server URL.
func checkURL(s string) error {
	bad := func(why string, args ...any) error {
		return fmt.Errorf("%q is not a NATS URL (like nats://host:4222): %s", Redact(s), fmt.Sprintf(why, args...))
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return bad("it contains %q", r)
	}
	raw := s
	if !strings.Contains(s, "://") {
		raw = "nats://" + s // what nats.go does with host[:port]
	}
	u, err := url.Parse(raw)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // url.Error repeats the URL, password and all
		}
		return bad("%v", err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return bad("unknown scheme %q (want nats, tls, ws or wss)", u.Scheme)
	}
	if u.Hostname() == "" {
		return bad("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("port %q is not 1..65535", p)
		}
	}
	if (scheme == "nats" || scheme == "tls") && (u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "") {
		return bad("a %s URL has no path, query or fragment", scheme)
	}
	return nil
}

// Redact hides the user information (password or token) of a URL for
// logs and errors: nats://user:pw@host:4222 → nats://xxxxx@host:4222.
func Redact(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 && i < at {
		start = i + 3
	}
	return s[:start] + "xxxxx" + s[at:]
}

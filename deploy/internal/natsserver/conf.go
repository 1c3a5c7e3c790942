package natsserver

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Overrides are command-line values that replace a configuration file's,
// as nats-server's own flags do; an empty field keeps the file's value.
type Overrides struct {
	Addr       string // client listener host:port
	StoreDir   string // JetStream store directory (and JetStream on)
	MaxPayload int32  // 0 = the file's
	HTTPAddr   string // monitoring listener host:port
}

// LoadFile reads a standard nats-server configuration file with the
// library's own parser (server.ProcessConfigFile), so everything
// nats-server's documentation describes works as there: cluster routes,
// jetstream (store_dir, limits), accounts, users, permissions, nkeys,
// authorization, TLS on clients, routes and monitoring, include files and
// $VARIABLES taken from the environment. Then o is applied. An error is
// the library's (file:line:column: what; a syntax error gets the file's
// name in front), or a bad override.
func LoadFile(path string, o Overrides) (*server.Options, error) {
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		if !strings.Contains(err.Error(), path) { // the parser's syntax errors name only the line
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	if o.Addr != "" {
		if err := SetListen(opts, o.Addr); err != nil {
			return nil, err
		}
	}
	if o.StoreDir != "" {
		opts.JetStream, opts.StoreDir = true, o.StoreDir
	}
	if o.MaxPayload != 0 {
		opts.MaxPayload = o.MaxPayload
	}
	if o.HTTPAddr != "" {
		if err := SetHTTP(opts, o.HTTPAddr); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// IgnoredLogging names the logging options of opts that a Server does not
// follow (it logs with slog to its caller's logger; debug and trace are
// followed), or "" when there are none.
func IgnoredLogging(opts *server.Options) string {
	switch {
	case opts.LogFile != "":
		return "log_file"
	case opts.Syslog:
		return "syslog"
	case opts.RemoteSyslog != "":
		return "remote_syslog"
	}
	return ""
}

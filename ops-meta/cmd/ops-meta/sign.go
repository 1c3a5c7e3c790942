package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
)

const signUsage = `usage:
  ops-meta sign keygen -pub <file> -priv <file>     create an ed25519 key pair
  ops-meta sign sign -key <private key> <name>-<version>.tar.gz ...
                                                   write .sha256, .md5 and .sig sidecars
  ops-meta sign verify -pub <public key> <name>-<version>.tar.gz ...
                                                   check sidecars and signature (exit 1 on failure)
The version is what follows the last '-' that precedes a digit:
kestrel-agent-1.2.0-rc1.tar.gz is agent "kestrel-agent", version "1.2.0-rc1".
`

func runSign(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, signUsage)
		return 2
	}
	fs := flag.NewFlagSet("ops-meta sign "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, signUsage) }
	switch args[0] {
	case "keygen":
		pub := fs.String("pub", "", "public key file to create")
		priv := fs.String("priv", "", "private key file to create (mode 0600)")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *pub == "" || *priv == "" || fs.NArg() != 0 {
			fmt.Fprint(stderr, signUsage)
			return 2
		}
		if err := sign.Keygen(*pub, *priv); err != nil {
			fmt.Fprintf(stderr, "ops-meta sign keygen: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s and %s\n", *pub, *priv)
		return 0
	case "sign":
		keyPath := fs.String("key", "", "private key file")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *keyPath == "" || fs.NArg() == 0 {
			fmt.Fprint(stderr, signUsage)
			return 2
		}
		key, err := sign.LoadPrivateKey(*keyPath)
		if err != nil {
			fmt.Fprintf(stderr, "ops-meta sign sign: %v\n", err)
			return 1
		}
		for _, f := range fs.Args() {
			if err := sign.SignFile(key, f); err != nil {
				fmt.Fprintf(stderr, "ops-meta sign sign: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "signed %s\n", f)
		}
		return 0
	case "verify":
		pubPath := fs.String("pub", "", "public key file")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *pubPath == "" || fs.NArg() == 0 {
			fmt.Fprint(stderr, signUsage)
			return 2
		}
		pub, err := sign.LoadPublicKey(*pubPath)
		if err != nil {
			fmt.Fprintf(stderr, "ops-meta sign verify: %v\n", err)
			return 1
		}
		code := 0
		for _, f := range fs.Args() {
			if err := sign.VerifyFile(pub, f); err != nil {
				fmt.Fprintf(stderr, "FAIL %s: %v\n", f, err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "OK %s\n", f)
		}
		return code
	default:
		fmt.Fprintf(stderr, "ops-meta sign: unknown command %q\n%s", args[0], signUsage)
		return 2
	}
}

package install

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes an exclusive lock on <root>/.ops-updater.lock so two updaters
// never drive one install dir. The kernel drops it when the process dies.
func Lock(root string) (release func(), err error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create install dir: %w", err)
	}
	p := filepath.Join(root, ".ops-updater.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("install dir %s is locked by another ops-updater (%s): %w", root, p, err)
	}
	return func() { f.Close() }, nil
}

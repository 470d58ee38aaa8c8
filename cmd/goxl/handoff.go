package main

import (
	"os"
	"path/filepath"
)

// companionName is the goxl built with cgo, installed beside a goxl built
// without it. The cgo-free goxl is the daemon's client: a Go binary that
// links no C starts in a third of the time under emulation (measured in
// dom0 on Xen under QEMU: 85 ms for a static Go binary, 233 ms for goxl
// with libxl linked, 232 ms for a whole `xl list`), and a verb through the
// daemon needs nothing else (an xl config goes to the daemon as text).
// Whatever needs libxl in this process (no daemon answers, an xl config
// to parse here for create -n, the daemon or a monitor itself) is handed
// to the companion by exec: same pid, argv, environment and descriptors,
// so signals, exit codes and terminals are the companion's own.
const companionName = "goxl-libxl"

// companionPath is where the cgo goxl is: $GOXL_LIBXL_BIN, else beside
// this executable. "" if there is none.
func companionPath() string {
	if p := os.Getenv("GOXL_LIBXL_BIN"); p != "" {
		return p
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), companionName)
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return ""
	}
	return p
}

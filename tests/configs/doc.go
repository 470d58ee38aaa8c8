// Package configs is goxl's corpus of xl domain configs (xl.cfg(5)),
// embedded so that unit tests and the real-Xen integration tests (which
// run inside dom0, far from the source tree) read the same files.
//
// Each file's first line says which parser goxl must use for it:
// "# goxl: own" (goxl's own parser, libxl.ParseXL, must accept it) or
// "# goxl: xl" (it uses xl keys goxl's own parser does not map, so
// libxl.LoadConfig hands it to `xl create -n`). In dom0, every file must
// give the same libxl_domain_config through goxl as through
// `xl create -n` (tests/integration/config_test.go). Xen's own examples
// (xlexample.hvm, .pvlinux, .pvhlinux) are not copied here: the
// integration test reads them from /etc/xen, where Debian's
// xen-utils-common installs them.
//
// The files are written for goxl (MIT); none is copied from Xen.
package configs

import "embed"

// FS holds the corpus: *.cfg.
//
//go:embed *.cfg
var FS embed.FS

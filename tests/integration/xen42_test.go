//go:build xenintegration && xen42

package integration

// In the 4.2 dom0 (tests/xen42/image) /usr/sbin/xl is 4.2's own; 4.17's
// xl cannot talk to a 4.2 hypervisor (its sysctls fail: "getting
// physinfo: Permission denied").
//
// 4.2.1's libxl_ctx_free deregisters its own xenstore watch fd after the
// close reaped it: the hook invariants are checked after close too.
func init() {
	xlBinary = "/usr/sbin/xl"
	checkHooksAfterClose = true
	wantLibxlMinor = 2
}

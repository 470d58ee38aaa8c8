//go:build cgo

package libxl

/*
#include "helpers.h"
*/
import "C"

import "fmt"

// notSupportedError: the libxl API goxl was compiled against (see
// compat42.h: LIBXL_API_VERSION and LIBXL_HAVE_*) has no such call or
// value. It matches ErrNotSupported.
type notSupportedError struct{ what, reason string }

func (e *notSupportedError) Error() string {
	return "libxl: not supported by the libxl API in use: " + e.what + ": " + e.reason
}

func (e *notSupportedError) Is(target error) bool { return target == ErrNotSupported }

// Why each call or value is missing from the 4.2 API.
var notInAPIReasons = map[string]string{
	"libxl_domain_config_from_json":       "libxl 4.2 has no *_from_json parsers; JSON configs need libxl >= 4.5 (use a DomainConfig or an xl config)",
	"libxl_domain_shutdown":               "libxl 4.2's libxl_domain_shutdown is synchronous (no ao_how); asynchronous shutdown needs libxl >= 4.13",
	"libxl_domain_reboot":                 "libxl 4.2's libxl_domain_reboot is synchronous (no ao_how); asynchronous reboot needs libxl >= 4.13",
	"libxl_retrieve_domain_configuration": "libxl 4.2 has no libxl_retrieve_domain_configuration (LIBXL_HAVE_RETRIEVE_DOMAIN_CONFIGURATION, 4.5)",
	"type=pvh":                            "libxl 4.2 has no PVH domain type (4.10)",
	"qed":                                 "libxl 4.2 has no QED disk format (LIBXL_HAVE_QED, 4.5)",
	"standalone":                          "libxl 4.2 has no standalone disk backend (4.6)",
	"soft-reset":                          "libxl 4.2 has no soft_reset shutdown action (LIBXL_HAVE_SOFT_RESET, 4.6)",
	"libxl_userdata_unlink":               "libxl 4.2 has no libxl_userdata_unlink (LIBXL_HAVE_USERDATA_UNLINK, 4.5)",
	"libxl_domain_soft_reset":             "libxl 4.2 has no soft reset (LIBXL_HAVE_SOFT_RESET, 4.6)",
	"kernel":                              "libxl 4.2 boots a kernel directly only for PV domains (LIBXL_HAVE_BUILDINFO_KERNEL, 4.5)",
	"backend_domname":                     "libxl 4.2 names a backend domain only by domid (LIBXL_HAVE_DEVICE_BACKEND_DOMNAME, 4.3)",
	"libxl_set_memory_target":             "libxl 4.2's libxl_set_memory_target takes a 32-bit KiB target (at most 2147483647 KiB; 64-bit from LIBXL_HAVE_MEMKB_64BITS, 4.8)",
	"gatewaydev":                          "libxl 4.2's libxl_device_nic has no gatewaydev (4.3)",
	"trusted":                             "libxl 4.2's libxl_device_nic has no trusted flag (LIBXL_HAVE_NIC_TRUSTED, 4.14)",
	"on_soft_reset":                       "libxl 4.2 has no soft reset, so no on_soft_reset action other than the default (LIBXL_HAVE_SOFT_RESET, 4.6)",
}

func notInAPI(what string) error {
	return &notSupportedError{what: what, reason: notInAPIReasons[what]}
}

// libxlAPI42 is true when compat42.h selected the libxl 4.2 API.
const libxlAPI42 = C.GOXL_LIBXL_API_42 != 0

// notInAPIResult turns compat42.h's GOXL_ERROR_NOT_IN_API into the error.
func notInAPIResult(op string, rc C.int) (error, bool) {
	if rc != C.GOXL_ERROR_NOT_IN_API {
		return nil, false
	}
	name := op
	for i := range op {
		if op[i] == '(' {
			name = op[:i]
			break
		}
	}
	return &OpError{Op: op, Err: notInAPI(name)}, true
}

// checkConfigAPI refuses, before libxl sees them, config values the
// libxl API in use lacks (compat42.h maps them to GOXL_ENUM_NOT_IN_API).
func checkConfigAPI(s DomainConfig) error {
	const absent = C.GOXL_ENUM_NOT_IN_API
	if v, ok := domainTypeValue[s.Type]; ok && v == absent {
		return notInAPI("type=pvh")
	}
	for _, a := range []ShutdownAction{s.OnPoweroff, s.OnReboot, s.OnCrash} {
		if v, ok := actionValue[a]; ok && v == absent {
			return notInAPI("soft-reset")
		}
	}
	for i, dk := range s.Disks {
		if v, ok := diskFormatValue[dk.Format]; ok && v == absent {
			return fmt.Errorf("disk %d: %w", i, notInAPI("qed"))
		}
		if v, ok := diskBackendValue[dk.Backend]; ok && v == absent {
			return fmt.Errorf("disk %d: %w", i, notInAPI("standalone"))
		}
	}
	return nil
}

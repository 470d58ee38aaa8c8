//go:build cgo

package libxl

/*
#include <libxl.h>
*/
import "C"

// readVersion reads libxl_get_version_info; the result is libxl's to keep.
func readVersion(ctx *C.libxl_ctx) VersionInfo {
	info := C.libxl_get_version_info(ctx)
	if info == nil {
		return VersionInfo{}
	}
	str := func(s *C.char) string {
		if s == nil {
			return ""
		}
		return C.GoString(s)
	}
	return VersionInfo{
		Major:        int(info.xen_version_major),
		Minor:        int(info.xen_version_minor),
		Extra:        str(info.xen_version_extra),
		Capabilities: str(info.capabilities),
		Changeset:    str(info.changeset),
	}
}

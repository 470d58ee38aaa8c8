package libxl

import "fmt"

// VersionInfo is the part of libxl_version_info that goxl uses.
type VersionInfo struct {
	Major, Minor int
	Extra        string // such as ".7" or ".1-pre"
	Capabilities string
	Changeset    string
}

func (v VersionInfo) String() string { return fmt.Sprintf("%d.%d%s", v.Major, v.Minor, v.Extra) }

// Is42Unfixed reports a libxl whose records die at deregistration: 4.2.0
// and 4.2.1. 4.2.2 has the fixes backported.
func (v VersionInfo) Is42Unfixed() bool {
	if v.Major != 4 || v.Minor != 2 {
		return false
	}
	patch := -1
	fmt.Sscanf(v.Extra, ".%d", &patch)
	return patch == 0 || patch == 1
}

// HasNexus reports the 4.2.2+/4.3+ semantics: for_libxl valid until ctx
// free, stale deliveries ignored, timeouts cancelled by fire-now.
func (v VersionInfo) HasNexus() bool {
	return v.Major > 4 || (v.Major == 4 && v.Minor >= 3) || (v.Major == 4 && v.Minor == 2 && !v.Is42Unfixed())
}

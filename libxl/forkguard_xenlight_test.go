//go:build cgo && !libxlmodel && !xen42

package libxl

import "testing"

// The fork guard only works if libxenctrl's and libxenstore's calls into
// libxencall and libxentoolcore are bound to goxl's wrappers: the linker
// must export them from the binary and the dynamic linker must find them
// first. A change of link flags or of the wrappers' names would silently
// bring back the destroyer hang on real Xen; this catches it without Xen.
func TestForkGuardWrapsTheLibraries(t *testing.T) {
	if !forkGuardInterposed() {
		t.Fatal("xencall_alloc_buffer_pages or xentoolcore__register_active_handle resolves to the library's own function, not to forkguard.c's wrapper")
	}
}

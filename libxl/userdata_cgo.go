//go:build cgo

package libxl

/*
#include "lifecycle_helpers.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// ErrNoUserdata is returned by RetrieveUserdata when the domain has no
// record under that key.
var ErrNoUserdata = errors.New("libxl: no userdata under that key")

// StoreUserdata stores data under key for the domain
// (libxl_userdata_store). libxl keeps it beside the domain (keyed by
// domid and UUID) until the domain is destroyed; xl keeps its own records
// there too ("xl"), as libxl does ("libxl-json"). The replacement is
// atomic: a reader sees the old record or the new one.
func (c *Ctx) StoreUserdata(domid uint32, key string, data []byte) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	defer exit()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p *C.uint8_t
	if len(data) > 0 {
		p = (*C.uint8_t)(C.CBytes(data))
		defer C.free(unsafe.Pointer(p))
	}
	if rc := C.libxl_userdata_store(raw, C.uint32_t(domid), ck, p, C.int(len(data))); rc != 0 {
		return &OpError{Op: fmt.Sprintf("libxl_userdata_store(%d, %s)", domid, key), Err: Error(rc)}
	}
	return nil
}

// RetrieveUserdata reads the record under key (libxl_userdata_retrieve).
// A domain without one gives ErrNoUserdata.
func (c *Ctx) RetrieveUserdata(domid uint32, key string) ([]byte, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return nil, err
	}
	defer exit()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p *C.uint8_t
	var n C.int
	rc, errno := C.libxl_userdata_retrieve(raw, C.uint32_t(domid), ck, &p, &n)
	if p != nil {
		defer C.free(unsafe.Pointer(p))
	}
	if rc != 0 {
		if errors.Is(errno, syscall.ENOENT) {
			return nil, fmt.Errorf("domain %d, %s: %w", domid, key, ErrNoUserdata)
		}
		return nil, &OpError{Op: fmt.Sprintf("libxl_userdata_retrieve(%d, %s)", domid, key), Err: Error(rc)}
	}
	if n == 0 || p == nil {
		// libxl reports a missing record as success with no data.
		return nil, fmt.Errorf("domain %d, %s: %w", domid, key, ErrNoUserdata)
	}
	return C.GoBytes(unsafe.Pointer(p), n), nil
}

// UnlinkUserdata removes the record under key (libxl_userdata_unlink).
func (c *Ctx) UnlinkUserdata(domid uint32, key string) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	defer exit()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	if rc := C.goxl_userdata_unlink(raw, C.uint32_t(domid), ck); rc != 0 {
		if err, ok := notInAPIResult("libxl_userdata_unlink", rc); ok {
			return err
		}
		return &OpError{Op: fmt.Sprintf("libxl_userdata_unlink(%d, %s)", domid, key), Err: Error(rc)}
	}
	return nil
}

// CoreDumpDomain writes the domain's memory to path
// (libxl_domain_core_dump), as xl's coredump-* actions do.
func (c *Ctx) CoreDumpDomain(ctx context.Context, domid uint32, path string) error {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	return c.domidAO(ctx, "libxl_domain_core_dump", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.libxl_domain_core_dump(r, d, cp, h)
	})
}

// RenameDomain renames a domain (libxl_domain_rename); oldName, if not
// empty, must be its current name.
func (c *Ctx) RenameDomain(domid uint32, oldName, newName string) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	defer exit()
	var co *C.char
	if oldName != "" {
		co = C.CString(oldName)
		defer C.free(unsafe.Pointer(co))
	}
	cn := C.CString(newName)
	defer C.free(unsafe.Pointer(cn))
	if rc := C.libxl_domain_rename(raw, C.uint32_t(domid), co, cn); rc != 0 {
		return &OpError{Op: fmt.Sprintf("libxl_domain_rename(%d, %s)", domid, newName), Err: Error(rc)}
	}
	return nil
}

// SoftResetDomain resets a domain in place after a soft-reset shutdown
// (libxl_domain_soft_reset; HVM guests only, as in libxl).
func (c *Ctx) SoftResetDomain(ctx context.Context, domid uint32, cfg Config) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	d, err := buildConfig(raw, cfg)
	exit()
	if err != nil {
		return err
	}
	defer C.goxl_config_free(d)
	return c.runAO(ctx, fmt.Sprintf("libxl_domain_soft_reset(%d)", domid), func(raw *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		return C.goxl_domain_soft_reset(raw, d, C.uint32_t(domid), how)
	})
}

//go:build !cgo

package libxl

import (
	"context"
	"errors"
)

// ErrNoUserdata is returned by RetrieveUserdata when the domain has no
// record under that key.
var ErrNoUserdata = errors.New("libxl: no userdata under that key")

// StoreUserdata returns ErrNotSupported.
func (c *Ctx) StoreUserdata(uint32, string, []byte) error { return ErrNotSupported }

// RetrieveUserdata returns ErrNotSupported.
func (c *Ctx) RetrieveUserdata(uint32, string) ([]byte, error) { return nil, ErrNotSupported }

// UnlinkUserdata returns ErrNotSupported.
func (c *Ctx) UnlinkUserdata(uint32, string) error { return ErrNotSupported }

// CoreDumpDomain returns ErrNotSupported.
func (c *Ctx) CoreDumpDomain(context.Context, uint32, string) error { return ErrNotSupported }

// RenameDomain returns ErrNotSupported.
func (c *Ctx) RenameDomain(uint32, string, string) error { return ErrNotSupported }

// SoftResetDomain returns ErrNotSupported.
func (c *Ctx) SoftResetDomain(context.Context, uint32, Config) error { return ErrNotSupported }

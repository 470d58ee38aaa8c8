//go:build !cgo

package libxl

import "context"

// Without cgo there is no libxl: the lifecycle, config and watch calls
// all return ErrNotSupported. The types and pure-Go helpers still work.

// ParseXL returns ErrNotSupported: it needs libxlutil.
func ParseXL(filename string, data []byte) (*DomainConfig, error) { return nil, ErrNotSupported }

// ParseXLFile returns ErrNotSupported: it needs libxlutil.
func ParseXLFile(path string) (*DomainConfig, error) { return nil, ErrNotSupported }

// ReadSaveFileConfig returns ErrNotSupported.
func ReadSaveFileConfig(path string) (JSONConfig, error) { return "", ErrNotSupported }

// ConfigToJSON returns ErrNotSupported.
func (c *Ctx) ConfigToJSON(Config) (string, error) { return "", ErrNotSupported }

// CheckConfig returns ErrNotSupported.
func (c *Ctx) CheckConfig(Config) error { return ErrNotSupported }

// ListDomains returns ErrNotSupported.
func (c *Ctx) ListDomains() ([]DomainInfo, error) { return nil, ErrNotSupported }

// DomainInfo returns ErrNotSupported.
func (c *Ctx) DomainInfo(uint32) (DomainInfo, error) { return DomainInfo{}, ErrNotSupported }

// DomainIDByName returns ErrNotSupported.
func (c *Ctx) DomainIDByName(string) (uint32, error) { return 0, ErrNotSupported }

// DomainByName returns ErrNotSupported.
func (c *Ctx) DomainByName(string) (DomainInfo, error) { return DomainInfo{}, ErrNotSupported }

// DomainByUUID returns ErrNotSupported.
func (c *Ctx) DomainByUUID(UUID) (DomainInfo, error) { return DomainInfo{}, ErrNotSupported }

// LookupDomain returns ErrNotSupported.
func (c *Ctx) LookupDomain(string) (DomainInfo, error) { return DomainInfo{}, ErrNotSupported }

// CreateDomain returns ErrNotSupported.
func (c *Ctx) CreateDomain(context.Context, Config) (uint32, error) { return 0, ErrNotSupported }

// DestroyDomain returns ErrNotSupported.
func (c *Ctx) DestroyDomain(context.Context, uint32) error { return ErrNotSupported }

// ShutdownDomain returns ErrNotSupported.
func (c *Ctx) ShutdownDomain(context.Context, uint32) error { return ErrNotSupported }

// RebootDomain returns ErrNotSupported.
func (c *Ctx) RebootDomain(context.Context, uint32) error { return ErrNotSupported }

// PauseDomain returns ErrNotSupported.
func (c *Ctx) PauseDomain(context.Context, uint32) error { return ErrNotSupported }

// UnpauseDomain returns ErrNotSupported.
func (c *Ctx) UnpauseDomain(context.Context, uint32) error { return ErrNotSupported }

// SuspendDomain returns ErrNotSupported.
func (c *Ctx) SuspendDomain(context.Context, uint32, int) error { return ErrNotSupported }

// RetrieveDomainConfig returns ErrNotSupported.
func (c *Ctx) RetrieveDomainConfig(context.Context, uint32) (JSONConfig, error) {
	return "", ErrNotSupported
}

// SaveDomain returns ErrNotSupported.
func (c *Ctx) SaveDomain(context.Context, uint32, string) error { return ErrNotSupported }

// RestoreDomain returns ErrNotSupported.
func (c *Ctx) RestoreDomain(context.Context, string, Config) (uint32, error) {
	return 0, ErrNotSupported
}

// ConsoleTTY returns ErrNotSupported.
func (c *Ctx) ConsoleTTY(uint32, int, ConsoleType) (string, error) { return "", ErrNotSupported }

// PrimaryConsoleTTY returns ErrNotSupported.
func (c *Ctx) PrimaryConsoleTTY(uint32) (string, error) { return "", ErrNotSupported }

// WatchDomainDeath returns ErrNotSupported.
func (c *Ctx) WatchDomainDeath(uint32, WatchOptions) (*Subscription, error) {
	return nil, ErrNotSupported
}

// WatchDiskEject returns ErrNotSupported.
func (c *Ctx) WatchDiskEject(uint32, string, WatchOptions) (*Subscription, error) {
	return nil, ErrNotSupported
}

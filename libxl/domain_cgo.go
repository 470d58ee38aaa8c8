//go:build cgo

package libxl

/*
#include "lifecycle_helpers.h"
*/
import "C"

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"
)

// invalidDomID is libxl's INVALID_DOMID (~0).
const invalidDomID = ^uint32(0)

// ListDomains returns every domain (libxl_list_domain), with names from
// libxl_domid_to_name.
func (c *Ctx) ListDomains() ([]DomainInfo, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return nil, err
	}
	defer exit()
	var n C.int
	list := C.libxl_list_domain(raw, &n)
	if list == nil {
		return nil, &OpError{Op: "libxl_list_domain", Err: ErrFail}
	}
	defer C.libxl_dominfo_list_free(list, n)
	out := make([]DomainInfo, 0, int(n))
	for i := 0; i < int(n); i++ {
		out = append(out, dominfoFromC(raw, C.goxl_dominfo_at(list, C.int(i))))
	}
	return out, nil
}

// DomainInfo returns one domain's state (libxl_domain_info). A domid that
// names no domain gives ErrDomainNotFound.
func (c *Ctx) DomainInfo(domid uint32) (DomainInfo, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return DomainInfo{}, err
	}
	defer exit()
	return domainInfo(raw, domid)
}

// domainInfoInOp is DomainInfo within a held operation (its cleanup may
// run while Close waits for it).
func (c *Ctx) domainInfoInOp(domid uint32) (DomainInfo, error) {
	raw, exit := c.enterInOp()
	defer exit()
	return domainInfo(raw, domid)
}

func domainInfo(raw *C.libxl_ctx, domid uint32) (DomainInfo, error) {
	var info C.libxl_dominfo
	C.libxl_dominfo_init(&info)
	defer C.libxl_dominfo_dispose(&info)
	if rc := C.goxl_domain_info(raw, &info, C.uint32_t(domid)); rc != 0 {
		return DomainInfo{}, &OpError{Op: fmt.Sprintf("libxl_domain_info(%d)", domid), Err: Error(rc)}
	}
	return dominfoFromC(raw, &info), nil
}

func dominfoFromC(raw *C.libxl_ctx, info *C.libxl_dominfo) DomainInfo {
	d := DomainInfo{
		DomID:          uint32(info.domid),
		Type:           domainTypeName[C.goxl_dominfo_type(info)],
		Running:        bool(info.running),
		Blocked:        bool(info.blocked),
		Paused:         bool(info.paused),
		Shutdown:       bool(info.shutdown),
		Dying:          bool(info.dying),
		ShutdownReason: ShutdownReason(int(info.shutdown_reason)),
		CurrentMemKB:   uint64(info.current_memkb),
		MaxMemKB:       uint64(info.max_memkb),
		CPUTime:        time.Duration(info.cpu_time),
		VCPUsOnline:    uint32(info.vcpu_online),
		VCPUMaxID:      uint32(info.vcpu_max_id),
	}
	if !d.Shutdown {
		d.ShutdownReason = ShutdownUnknown
	}
	C.memcpy(unsafe.Pointer(&d.UUID[0]), unsafe.Pointer(&info.uuid), 16)
	d.UUIDString = d.UUID.String()
	if name := C.libxl_domid_to_name(raw, info.domid); name != nil {
		d.Name = C.GoString(name)
		C.free(unsafe.Pointer(name))
	}
	return d
}

// DomainIDByName resolves a name (libxl_name_to_domid).
func (c *Ctx) DomainIDByName(name string) (uint32, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return 0, err
	}
	defer exit()
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var domid C.uint32_t
	if rc := C.libxl_name_to_domid(raw, cs, &domid); rc != 0 {
		return 0, nameToDomidError(name, Error(rc))
	}
	return uint32(domid), nil
}

// nameToDomidError classifies libxl_name_to_domid's rc: it answers
// ERROR_INVAL when no domain has the name, and another code (ERROR_NOMEM
// when it could not list the domains) when it does not know. Only the
// first is ErrNoSuchDomain: a transient failure must not read as "gone".
func nameToDomidError(name string, rc Error) error {
	if rc == ErrInval {
		return fmt.Errorf("domain %q: %w", name, ErrNoSuchDomain)
	}
	return &OpError{Op: fmt.Sprintf("libxl_name_to_domid(%q)", name), Err: rc}
}

// DomainByName returns the domain with that name.
func (c *Ctx) DomainByName(name string) (DomainInfo, error) {
	domid, err := c.DomainIDByName(name)
	if err != nil {
		return DomainInfo{}, err
	}
	return c.DomainInfo(domid)
}

// DomainByUUID finds a domain by UUID (libxl has no direct lookup: the
// list is scanned).
func (c *Ctx) DomainByUUID(u UUID) (DomainInfo, error) {
	all, err := c.ListDomains()
	if err != nil {
		return DomainInfo{}, err
	}
	for _, d := range all {
		if d.UUID == u {
			return d, nil
		}
	}
	return DomainInfo{}, fmt.Errorf("domain %s: %w", u, ErrNoSuchDomain)
}

// LookupDomain finds a domain named by a domid, a UUID or a name, as xl's
// verbs accept them.
func (c *Ctx) LookupDomain(s string) (DomainInfo, error) {
	if id, ok := ParseDomID(s); ok {
		d, err := c.DomainInfo(id)
		if errors.Is(err, ErrDomainNotFound) {
			return d, fmt.Errorf("domain %d: %w", id, ErrNoSuchDomain)
		}
		return d, err
	}
	if u, err := ParseUUID(s); err == nil {
		return c.DomainByUUID(u)
	}
	return c.DomainByName(s)
}

// CreateDomain builds and starts a domain, paused, from cfg
// (libxl_domain_create_new). It runs on the calling goroutine: the
// initiating call builds the domain synchronously for seconds.
//
// The libxl_domain_config and the domid libxl writes later live in C
// memory until the operation has completed. If the create fails, ctx is
// cancelled or Close begins, whatever was built is destroyed before
// CreateDomain returns, on this ctx (Close waits for that): an error
// means no domain was left behind (a failed cleanup is joined to the
// error). Cancellation gives an error matching context.Canceled; Close,
// one matching ErrClosed.
func (c *Ctx) CreateDomain(ctx context.Context, cfg Config) (uint32, error) {
	return c.create(ctx, "libxl_domain_create_new", cfg, -1)
}

func (c *Ctx) create(ctx context.Context, op string, cfg Config, restoreFD int) (uint32, error) {
	if IsNilConfig(cfg) {
		return 0, ErrNilConfig
	}
	if err := ctx.Err(); err != nil {
		return 0, &OpError{Op: op, Err: err}
	}
	end, err := c.beginOp()
	if err != nil {
		return 0, err
	}
	defer end()
	raw, exit := c.enterInOp()
	d, err := buildConfig(raw, cfg)
	exit()
	if err != nil {
		return 0, err
	}
	defer C.goxl_config_free(d)
	domid := C.goxl_domid_new()
	if domid == nil {
		return 0, ErrNoMem
	}
	defer C.free(unsafe.Pointer(domid))
	var params *C.libxl_domain_restore_params
	if restoreFD >= 0 {
		if params = C.goxl_restore_params_new(); params == nil {
			return 0, ErrNoMem
		}
		defer C.goxl_restore_params_free(params)
	}

	mode := abortOnClose
	if restoreFD >= 0 {
		mode = neverAbort // see neverAbort: libxl 4.17 crashes aborting a restore
	}
	err = c.runAOMode(ctx, mode, op, func(raw *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		if restoreFD >= 0 {
			return C.goxl_domain_create_restore(raw, d, domid, C.int(restoreFD), params, how)
		}
		return C.libxl_domain_create_new(raw, d, domid, how, nil)
	})
	id := uint32(*domid)
	if err == nil && ctx.Err() != nil {
		// Completed despite the abort request: the caller asked for
		// nothing to exist, so undo it.
		err = &OpError{Op: op, Err: ctx.Err()}
	}
	if err == nil && c.isClosing() {
		// Completed while Close began: the caller could not use the
		// domain through this ctx any more; undo it as for a cancel.
		err = &OpError{Op: op, Err: ErrClosed}
	}
	if err == nil {
		return id, nil
	}
	// libxl 4.17 keeps the domain on ERROR_ABORTED (retain_domain in
	// libxl_create.c) and writes its domid: destroy it here, on this
	// still-open ctx.
	if id != invalidDomID && id != 0 {
		if cerr := c.cleanupDomainInOp(id); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup of half-built domain %d: %w", id, cerr))
		}
	}
	return 0, err
}

// cleanupDomain destroys a half-built domain if it still exists. It uses
// a fresh context (the caller's may be the cancelled one) and is not cut
// short by Close, which waits for it.
func (c *Ctx) cleanupDomainInOp(domid uint32) error {
	if _, err := c.domainInfoInOp(domid); errors.Is(err, ErrDomainNotFound) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.runCleanupInOp(ctx, fmt.Sprintf("libxl_domain_destroy(%d)", domid), func(raw *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		return C.libxl_domain_destroy(raw, C.uint32_t(domid), how)
	})
	if errors.Is(err, ErrDomainNotFound) {
		return nil
	}
	return err
}

// resumeIfSuspended undoes a failed save, as xl does
// (libxl_domain_resume with suspend_cancel=1: the guest's suspend
// hypercall returns "cancelled" and it runs on where it stopped). A
// domain that was never suspended is left alone.
func (c *Ctx) resumeIfSuspendedInOp(domid uint32) error {
	info, err := c.domainInfoInOp(domid)
	if err != nil {
		return err
	}
	if !info.Shutdown || info.ShutdownReason != ShutdownSuspend {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.runCleanupInOp(ctx, fmt.Sprintf("libxl_domain_resume(%d)", domid), func(raw *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		return C.libxl_domain_resume(raw, C.uint32_t(domid), 1, how)
	})
}

type domidOp func(raw *C.libxl_ctx, domid C.uint32_t, how *C.libxl_asyncop_how) C.int

func (c *Ctx) domidAO(ctx context.Context, name string, domid uint32, op domidOp) error {
	return c.runAO(ctx, fmt.Sprintf("%s(%d)", name, domid), func(raw *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		return op(raw, C.uint32_t(domid), how)
	})
}

// DestroyDomain destroys a domain at once (libxl_domain_destroy).
func (c *Ctx) DestroyDomain(ctx context.Context, domid uint32) error {
	return c.domidAO(ctx, "libxl_domain_destroy", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.libxl_domain_destroy(r, d, h)
	})
}

// ShutdownDomain asks the guest to power off (libxl_domain_shutdown). It
// completes when the request is delivered, not when the guest is down:
// wait for EventDomainShutdown for that.
func (c *Ctx) ShutdownDomain(ctx context.Context, domid uint32) error {
	return c.domidAO(ctx, "libxl_domain_shutdown", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.goxl_domain_shutdown(r, d, h)
	})
}

// RebootDomain asks the guest to reboot (libxl_domain_reboot).
func (c *Ctx) RebootDomain(ctx context.Context, domid uint32) error {
	return c.domidAO(ctx, "libxl_domain_reboot", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.goxl_domain_reboot(r, d, h)
	})
}

// PauseDomain pauses a domain (libxl_domain_pause).
func (c *Ctx) PauseDomain(ctx context.Context, domid uint32) error {
	return c.domidAO(ctx, "libxl_domain_pause", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.goxl_domain_pause(r, d, h)
	})
}

// UnpauseDomain unpauses a domain (libxl_domain_unpause).
func (c *Ctx) UnpauseDomain(ctx context.Context, domid uint32) error {
	return c.domidAO(ctx, "libxl_domain_unpause", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.goxl_domain_unpause(r, d, h)
	})
}

// SuspendDomain writes the domain's state to fd (libxl_domain_suspend,
// flags 0). The domain is left shut down with reason suspend; destroy it
// afterwards (SaveDomain does not). fd stays the caller's.
func (c *Ctx) SuspendDomain(ctx context.Context, domid uint32, fd int) error {
	return c.domidAO(ctx, "libxl_domain_suspend", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.libxl_domain_suspend(r, d, C.int(fd), 0, h)
	})
}

// RetrieveDomainConfig returns the configuration libxl keeps for a
// running domain, in libxl's JSON (libxl_retrieve_domain_configuration,
// libxl_domain_config_to_json).
func (c *Ctx) RetrieveDomainConfig(ctx context.Context, domid uint32) (JSONConfig, error) {
	d := C.goxl_config_new()
	if d == nil {
		return "", ErrNoMem
	}
	defer C.goxl_config_free(d)
	err := c.domidAO(ctx, "libxl_retrieve_domain_configuration", domid, func(r *C.libxl_ctx, id C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.goxl_retrieve_domain_configuration(r, id, d, h)
	})
	if err != nil {
		return "", err
	}
	raw, exit, err := c.enter()
	if err != nil {
		return "", err
	}
	defer exit()
	js := C.libxl_domain_config_to_json(raw, d)
	if js == nil {
		return "", &OpError{Op: "libxl_domain_config_to_json", Err: ErrFail}
	}
	defer C.free(unsafe.Pointer(js))
	return JSONConfig(C.GoString(js)), nil
}

// xl's save-file header (tools/xl/xl.h), so that files saved by goxl
// restore with `xl restore` and the other way round.
var saveMagic = [32]byte([]byte("Xen saved domain, xl format\n \x00 \r"))

const (
	saveByteOrder    = 0x01020304
	saveFlagJSON     = 1 << 0
	saveFlagStreamV2 = 1 << 1
)

type saveHeader struct {
	Magic           [32]byte
	ByteOrder       uint32
	MandatoryFlags  uint32
	OptionalFlags   uint32
	OptionalDataLen uint32
}

// SaveDomain saves a domain to path as `xl save` does: xl's header with
// the domain's libxl JSON config, then the stream of libxl_domain_suspend.
// On success the domain is left shut down (reason suspend) and the
// caller destroys it. On failure (a full disk, a cancelled ctx, Close)
// the partial file is removed and, as xl does, a guest that was already
// suspended is resumed (libxl_domain_resume, suspend_cancel=1), on this
// ctx before SaveDomain returns: it runs on as it was, with its domid.
func (c *Ctx) SaveDomain(ctx context.Context, domid uint32, path string) (err error) {
	if err := ctx.Err(); err != nil {
		return &OpError{Op: "save", Err: err}
	}
	end, err := c.beginOp()
	if err != nil {
		return err
	}
	defer end()
	d := C.goxl_config_new()
	if d == nil {
		return ErrNoMem
	}
	defer C.goxl_config_free(d)
	err = c.runAOInOp(ctx, fmt.Sprintf("libxl_retrieve_domain_configuration(%d)", domid), func(r *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		return C.goxl_retrieve_domain_configuration(r, C.uint32_t(domid), d, how)
	})
	if err != nil {
		return err
	}
	raw, exit := c.enterInOp()
	js := C.libxl_domain_config_to_json(raw, d)
	exit()
	if js == nil {
		return &OpError{Op: "libxl_domain_config_to_json", Err: ErrFail}
	}
	cfg := JSONConfig(C.GoString(js))
	C.free(unsafe.Pointer(js))

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			if rerr := c.resumeIfSuspendedInOp(domid); rerr != nil {
				err = errors.Join(err, fmt.Errorf("resume of domain %d after the failed save: %w", domid, rerr))
			}
		}
	}()
	if err := writeSaveHeader(f, cfg); err != nil {
		return err
	}
	// Never aborted (see neverAbort): a save that completes after its
	// context ended or Close began is undone below like a failed one.
	err = c.runAOMode(ctx, neverAbort, fmt.Sprintf("libxl_domain_suspend(%d)", domid), func(r *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		return C.libxl_domain_suspend(r, C.uint32_t(domid), C.int(f.Fd()), 0, how)
	})
	if err == nil && ctx.Err() != nil {
		err = &OpError{Op: "save", Err: ctx.Err()}
	}
	if err == nil && c.isClosing() {
		err = &OpError{Op: "save", Err: ErrClosed}
	}
	if err == nil {
		// The data must be on disk: a full file system may only tell
		// at fsync or close.
		err = f.Sync()
	}
	return err
}

func writeSaveHeader(w io.Writer, cfg JSONConfig) error {
	data := append([]byte(cfg), 0)
	h := saveHeader{
		Magic:           saveMagic,
		ByteOrder:       saveByteOrder,
		MandatoryFlags:  saveFlagJSON | saveFlagStreamV2,
		OptionalDataLen: uint32(4 + len(data)),
	}
	var b bytes.Buffer
	binary.Write(&b, binary.NativeEndian, h)
	binary.Write(&b, binary.NativeEndian, uint32(len(data)))
	b.Write(data)
	_, err := w.Write(b.Bytes())
	return err
}

// readSaveHeader reads xl's header and returns the config it carries; the
// reader is left at the start of libxl's stream.
func readSaveHeader(r io.Reader) (JSONConfig, error) {
	var h saveHeader
	if err := binary.Read(r, binary.NativeEndian, &h); err != nil {
		return "", ErrBadSaveFile
	}
	if h.Magic != saveMagic {
		return "", ErrBadSaveFile
	}
	if h.ByteOrder != saveByteOrder {
		return "", fmt.Errorf("%w: saved on a host of the other byte order", ErrBadSaveFile)
	}
	if h.MandatoryFlags&^(saveFlagJSON|saveFlagStreamV2) != 0 || h.MandatoryFlags&saveFlagJSON == 0 {
		return "", fmt.Errorf("%w: unsupported mandatory flags %#x (goxl reads JSON configs only)", ErrBadSaveFile, h.MandatoryFlags)
	}
	if h.MandatoryFlags&saveFlagStreamV2 == 0 {
		return "", fmt.Errorf("%w: a v1 stream, which goxl does not restore", ErrBadSaveFile)
	}
	if h.OptionalDataLen < 4 || h.OptionalDataLen > 16<<20 {
		return "", fmt.Errorf("%w: bad optional data length %d", ErrBadSaveFile, h.OptionalDataLen)
	}
	opt := make([]byte, h.OptionalDataLen)
	if _, err := io.ReadFull(r, opt); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSaveFile, err)
	}
	n := binary.NativeEndian.Uint32(opt[:4])
	if int(n) > len(opt)-4 {
		return "", fmt.Errorf("%w: config length %d past the header", ErrBadSaveFile, n)
	}
	return JSONConfig(bytes.TrimRight(opt[4:4+n], "\x00")), nil
}

// libxl's stream header (libxl_sr_stream_format.h): the ident "LibxlFmt"
// and the version, big-endian.
var libxlStreamIdent = [8]byte{'L', 'i', 'b', 'x', 'l', 'F', 'm', 't'}

// checkStreamHeader checks libxl's stream header, which follows xl's
// header, and leaves f where it was. libxl 4.17 crashed (SIGSEGV, a NULL
// callback in its stream reader) restoring a file whose stream header
// was corrupted (tests/integration TestSaveRestoreBoundaries): such a
// file is refused here with ErrBadSaveFile, before libxl sees it.
func checkStreamHeader(f *os.File) error {
	var hdr [16]byte
	n, err := io.ReadFull(f, hdr[:])
	if _, serr := f.Seek(int64(-n), io.SeekCurrent); serr != nil {
		return serr
	}
	if err != nil {
		return fmt.Errorf("%w: no libxl stream after the header", ErrBadSaveFile)
	}
	if [8]byte(hdr[:8]) != libxlStreamIdent {
		return fmt.Errorf("%w: libxl's stream header is damaged (ident %x)", ErrBadSaveFile, hdr[:8])
	}
	if v := binary.BigEndian.Uint32(hdr[8:12]); v != 2 {
		return fmt.Errorf("%w: libxl stream version %d, goxl restores version 2", ErrBadSaveFile, v)
	}
	return nil
}

// ReadSaveFileConfig returns the config stored in a save file's header.
// It also checks libxl's stream header that follows (see
// checkStreamHeader), so that a damaged file is refused before anything
// is built.
func ReadSaveFileConfig(path string) (JSONConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cfg, err := readSaveHeader(f)
	if err != nil {
		return "", err
	}
	if err := checkStreamHeader(f); err != nil {
		return "", err
	}
	return cfg, nil
}

// RestoreDomain creates a domain from a file SaveDomain (or `xl save`)
// wrote (libxl_domain_create_restore, stream version 2). cfg nil means
// the config in the file's header. The domain is left paused, as after
// CreateDomain; a failed or cancelled restore leaves no domain behind.
func (c *Ctx) RestoreDomain(ctx context.Context, path string, cfg Config) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	stored, err := readSaveHeader(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkStreamHeader(f); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if cfg == nil {
		cfg = stored
	}
	return c.create(ctx, "libxl_domain_create_restore", cfg, int(f.Fd()))
}

// ConsoleTTY returns the pty path of a domain's console
// (libxl_console_get_tty).
func (c *Ctx) ConsoleTTY(domid uint32, num int, typ ConsoleType) (string, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return "", err
	}
	defer exit()
	var path *C.char
	if rc := C.libxl_console_get_tty(raw, C.uint32_t(domid), C.int(num), C.libxl_console_type(typ), &path); rc != 0 {
		return "", &OpError{Op: fmt.Sprintf("libxl_console_get_tty(%d)", domid), Err: Error(rc)}
	}
	defer C.free(unsafe.Pointer(path))
	return C.GoString(path), nil
}

// PrimaryConsoleTTY returns the pty path of a domain's primary console
// (libxl_primary_console_get_tty): PV console for PV/PVH, serial for HVM.
func (c *Ctx) PrimaryConsoleTTY(domid uint32) (string, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return "", err
	}
	defer exit()
	var path *C.char
	if rc := C.libxl_primary_console_get_tty(raw, C.uint32_t(domid), &path); rc != 0 {
		return "", &OpError{Op: fmt.Sprintf("libxl_primary_console_get_tty(%d)", domid), Err: Error(rc)}
	}
	defer C.free(unsafe.Pointer(path))
	return C.GoString(path), nil
}

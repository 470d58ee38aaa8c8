//go:build cgo

package goxl

import (
	"sync"
	"sync/atomic"
	"unsafe"

	pointer "github.com/mattn/go-pointer"
)

// A Token is the integer that C holds for a long-lived Go object: the
// `user` of a libxl ctx, the `for_callback` of an async operation, the
// token of a logger. It is a go-pointer key with a generation tag in its
// top 16 bits.
//
// go-pointer keys are malloc(1) addresses. Unref frees the key, and malloc
// hands the same address out again at once, so a bare key that C kept past
// Unref would Restore whatever object was saved next. goxl closes that in
// two layers:
//
//  1. Order: a token is released only after its last C use is known to be
//     over: a ctx's after libxl_ctx_free returned, an async operation's
//     after its completion ran, a logger's after xtl_logger_destroy.
//  2. Tag: each key carries the number of times its address has been
//     handed out, in bits 48..63, which x86-64 and arm64 user addresses
//     never use. Lookup compares the tag, so a stale token that survived a
//     broken order finds nothing instead of a newer object. The tag of one
//     address repeats only after 65,536 reuses of that address.
type Token uintptr

const (
	tokenTagShift = 48
	tokenAddrMask = uintptr(1)<<tokenTagShift - 1
)

type tokenEntry struct {
	tag   atomic.Uint32 // 0 until NewToken has tagged it; never matches a token
	value any
}

var (
	// tokenMu serialises tagging and release. tokenTags counts hand-outs
	// per address; it outlives Unref on purpose and grows only with the
	// number of distinct addresses, which malloc keeps small by reusing
	// them.
	tokenMu   sync.Mutex
	tokenTags = map[uintptr]uint16{}
)

// NewToken stores v and returns the integer to hand to C.
func NewToken(v any) Token {
	entry := &tokenEntry{value: v}
	key := pointer.Save(entry)
	addr := uintptr(key)
	if addr&^tokenAddrMask != 0 {
		pointer.Unref(key)
		panic("goxl: malloc returned an address above 2^48; tokens cannot be tagged")
	}
	tokenMu.Lock()
	tag := tokenTags[addr] + 1
	if tag == 0 { // wrapped: 0 means "not yet tagged"
		tag = 1
	}
	tokenTags[addr] = tag
	entry.tag.Store(uint32(tag))
	tokenMu.Unlock()
	return Token(addr | uintptr(tag)<<tokenTagShift)
}

// Lookup returns the object a token stands for, or nil when the token is
// unknown, released, or stale (its address now belongs to a newer token).
func (t Token) Lookup() any {
	entry := t.entry()
	if entry == nil {
		return nil
	}
	return entry.value
}

func (t Token) entry() *tokenEntry {
	addr := uintptr(t) & tokenAddrMask
	if addr == 0 {
		return nil
	}
	entry, _ := pointer.Restore(cAddr(addr)).(*tokenEntry)
	if entry == nil || entry.tag.Load() != uint32(uintptr(t)>>tokenTagShift) {
		return nil
	}
	return entry
}

// Release frees the token. Call it only after C's last use of it.
// Releasing a stale or already released token does nothing.
func (t Token) Release() {
	tokenMu.Lock()
	defer tokenMu.Unlock()
	if t.entry() == nil {
		return
	}
	pointer.Unref(cAddr(uintptr(t) & tokenAddrMask))
}

// cAddr turns the integer form of a C address (here: a go-pointer key, which
// is malloc'd C memory, never Go memory) back into a pointer.
func cAddr(addr uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

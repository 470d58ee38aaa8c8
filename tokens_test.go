//go:build cgo

package goxl

import (
	"testing"

	pointer "github.com/mattn/go-pointer"
	"github.com/stretchr/testify/require"
)

// The hazard is real: go-pointer frees its key on Unref and malloc hands
// the same address to the next Save.
func needAddressReuse(t *testing.T) {
	if asanBuild {
		t.Skip("ASan quarantines freed memory, so malloc never reuses an address here; this test runs in the -race phases")
	}
}

func TestGoPointerReusesKeys(t *testing.T) {
	needAddressReuse(t)
	reused := false
	for i := 0; i < 1000 && !reused; i++ {
		a := pointer.Save("old")
		pointer.Unref(a)
		b := pointer.Save("new")
		reused = a == b
		if reused {
			require.Equal(t, "new", pointer.Restore(a), "a bare stale key restores the newer object")
		}
		pointer.Unref(b)
	}
	require.True(t, reused, "malloc never reused a go-pointer key; the test cannot show the hazard")
}

// A stale Token never reaches the object that now owns its address.
func TestStaleTokenNeverReachesNewerObject(t *testing.T) {
	needAddressReuse(t)
	reusedAt := 0
	for i := 0; i < 1000; i++ {
		old := NewToken("old")
		require.Equal(t, "old", old.Lookup())
		old.Release()
		require.Nil(t, old.Lookup(), "released token must find nothing")

		fresh := NewToken("new")
		if uintptr(fresh)&tokenAddrMask == uintptr(old)&tokenAddrMask {
			reusedAt++
			require.NotEqual(t, old, fresh, "same address must carry a different tag")
		}
		require.Nil(t, old.Lookup(), "stale token must not restore the newer object")
		require.Equal(t, "new", fresh.Lookup())

		old.Release() // releasing a stale token must not free the new one
		require.Equal(t, "new", fresh.Lookup())
		fresh.Release()
	}
	require.Greater(t, reusedAt, 0, "no address was reused; the test proved nothing")
}

func TestTokenTagWrapsWithoutZero(t *testing.T) {
	needAddressReuse(t)
	tok := NewToken(1)
	addr := uintptr(tok) & tokenAddrMask
	tok.Release()

	tokenMu.Lock()
	tokenTags[addr] = 0xffff // next hand-out of this address wraps
	tokenMu.Unlock()
	for i := 0; i < 1000; i++ {
		next := NewToken(2)
		if uintptr(next)&tokenAddrMask == addr {
			require.Equal(t, uintptr(1), uintptr(next)>>tokenTagShift, "tag 0 is reserved for untagged entries")
			next.Release()
			return
		}
		defer next.Release()
	}
	t.Fatal("address was not handed out again")
}

func TestZeroAndUnknownTokens(t *testing.T) {
	require.Nil(t, Token(0).Lookup())
	require.Nil(t, Token(0x1234<<tokenTagShift).Lookup())
	Token(0).Release() // must not crash
}

func TestConcurrentTokens(t *testing.T) {
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 2000; i++ {
				tok := NewToken(g*100000 + i)
				if tok.Lookup() != g*100000+i {
					t.Errorf("token restored the wrong value")
					return
				}
				tok.Release()
				if tok.Lookup() != nil {
					t.Errorf("released token still found")
					return
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

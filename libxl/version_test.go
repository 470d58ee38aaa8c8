package libxl

import (
	"errors"
	"testing"
)

func TestVersionSemantics(t *testing.T) {
	cases := []struct {
		v              VersionInfo
		unfixed, nexus bool
	}{
		{VersionInfo{Major: 4, Minor: 2, Extra: ".0"}, true, false},
		{VersionInfo{Major: 4, Minor: 2, Extra: ".1"}, true, false},
		{VersionInfo{Major: 4, Minor: 2, Extra: ".1-pre"}, true, false},
		{VersionInfo{Major: 4, Minor: 2, Extra: ".2"}, false, true},
		{VersionInfo{Major: 4, Minor: 3, Extra: ".0"}, false, true},
		{VersionInfo{Major: 4, Minor: 17, Extra: ".7"}, false, true},
	}
	for _, c := range cases {
		if got := c.v.Is42Unfixed(); got != c.unfixed {
			t.Errorf("%s: Is42Unfixed = %v, want %v", c.v, got, c.unfixed)
		}
		if got := c.v.HasNexus(); got != c.nexus {
			t.Errorf("%s: HasNexus = %v, want %v", c.v, got, c.nexus)
		}
	}
}

func TestResolveXen42(t *testing.T) {
	t.Setenv("GOXL_LIBXL_PATCHED", "")
	t.Setenv("GOXL_LIBXL_SAFE_MODE", "")
	if got := resolveXen42(Xen42Refuse, false); got != Xen42Refuse {
		t.Fatalf("unpatched, no opt-in: %v", got)
	}
	if got := resolveXen42(Xen42Refuse, true); got != Xen42Patched {
		t.Fatalf("marker present: %v", got)
	}
	if got := resolveXen42(Xen42Serialised, true); got != Xen42Serialised {
		t.Fatalf("an explicit policy wins: %v", got)
	}
	t.Setenv("GOXL_LIBXL_SAFE_MODE", "1")
	if got := resolveXen42(Xen42Refuse, false); got != Xen42Serialised {
		t.Fatalf("GOXL_LIBXL_SAFE_MODE=1: %v", got)
	}
	t.Setenv("GOXL_LIBXL_PATCHED", "1")
	if got := resolveXen42(Xen42Refuse, false); got != Xen42Patched {
		t.Fatalf("GOXL_LIBXL_PATCHED=1: %v", got)
	}
}

func TestErrorsAreTyped(t *testing.T) {
	var err error = &OpError{Op: "libxl_domain_destroy", Err: Error(-21)}
	if !errors.Is(err, ErrDomainNotFound) {
		t.Fatal("errors.Is through OpError")
	}
	if Error(-21).Error() != "libxl: ERROR_DOMAIN_NOTFOUND" {
		t.Fatal(Error(-21).Error())
	}
	for code := -1; code >= -32; code-- {
		if _, ok := errorNames[Error(code)]; !ok {
			t.Errorf("no name for %d", code)
		}
	}
	if Error(5).Name() != "hook error 5" {
		t.Fatal(Error(5).Name())
	}
}

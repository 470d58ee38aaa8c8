package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"github.com/goxl/goxl/libxl"
)

// Every field of goxl's DomainConfig survives the wire: the daemon must
// build exactly what the CLI parsed (a field the protocol dropped would
// silently change the guest).
func TestWireConfigRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	typ := reflect.TypeOf(libxl.DomainConfig{})
	for i := 0; i < 200; i++ {
		v, ok := quick.Value(typ, r)
		if !ok {
			t.Fatalf("cannot generate a %v", typ)
		}
		n := 0
		normalize(v, &n)
		in := v.Interface().(libxl.DomainConfig)
		w, err := EncodeConfig(&in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		var back WireConfig
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		out, err := back.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&in, out) {
			t.Fatalf("config changed on the wire:\n in  %+v\n out %+v", in, out)
		}
	}
}

// A DomainInfo's UUID reaches the client (its JSON carries only the
// string form).
func TestDomainInfoUUIDOnTheWire(t *testing.T) {
	u := libxl.NewUUID()
	in := []libxl.DomainInfo{{DomID: 3, Name: "g", UUID: u, UUIDString: u.String()}}
	b, _ := json.Marshal(in)
	var out []libxl.DomainInfo
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	FixDomainInfos(out)
	if out[0].UUID != u {
		t.Fatalf("UUID %v after the wire, want %v", out[0].UUID, u)
	}
}

// normalize makes a generated value JSON-representable without changing
// which fields are set: readable distinct strings, nil for empty slices.
func normalize(v reflect.Value, n *int) {
	switch v.Kind() {
	case reflect.String:
		*n++
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i), n)
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
		}
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i), n)
		}
	case reflect.Ptr:
		if !v.IsNil() {
			normalize(v.Elem(), n)
		}
	}
}

// An xl config sent as text (by the goxl built without cgo) is parsed by
// the daemon with its overrides, and its relative kernel and ramdisk
// paths are the client's: resolved against the client's directory, not
// the daemon's.
func TestXLConfigTextOnTheWire(t *testing.T) {
	w := WireConfig{Format: "xl", File: "/home/u/g.cfg", Dir: "/home/u/guests",
		Text: "name = \"g0\"\ntype = \"pv\"\nkernel = \"vmlinuz\"\nramdisk = \"/boot/initrd\"\nmemory = 64\n\nname=\"g1\"\n"}
	cfg, err := w.Decode()
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cfg.(*libxl.DomainConfig)
	if !ok {
		t.Fatalf("decoded a %T", cfg)
	}
	if c.Name != "g1" || c.Kernel != "/home/u/guests/vmlinuz" || c.Ramdisk != "/boot/initrd" || c.MemoryMB != 64 {
		t.Errorf("decoded %+v; want g1 (the override), kernel /home/u/guests/vmlinuz, ramdisk /boot/initrd, 64 MiB", c)
	}
	bad := WireConfig{Format: "xl", File: "/home/u/bad.cfg", Text: "name = \"bad\"\nmemory = \n"}
	if _, err := bad.Decode(); !errors.Is(err, libxl.ErrConfig) || !strings.Contains(err.Error(), "bad.cfg") {
		t.Errorf("malformed xl text: %v; want a config error naming bad.cfg", err)
	}
}

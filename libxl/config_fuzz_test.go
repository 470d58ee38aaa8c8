//go:build cgo && !libxlmodel

package libxl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseXL feeds arbitrary bytes through libxlutil and goxl's key
// scanner. Properties: no crash or panic; an error is a *ConfigError (or
// ConfigErrors) with a line inside the input; a success has a name, a
// valid type, only known keys, and builds into a libxl_domain_config.
func FuzzParseXL(f *testing.F) {
	f.Add([]byte(guestCfg))
	f.Add([]byte("name='a'\ndisk=['/x,raw,xvda,rw']\nvif=['bridge=xenbr0']\n"))
	f.Add([]byte("name = \"a\"\nmemory = \n"))
	f.Add([]byte("name='a'; type='hvm'; memory=64; maxmem=128; vcpus=2; maxvcpus=4\n"))
	f.Add([]byte("name='a'\nextra += 'x'\nroot='/dev/xvda'\n"))
	f.Add([]byte("name='a'\ndisk=[ 'vdev=hdc,devtype=cdrom,target=' ]\n"))
	f.Add([]byte("name='a'\nuuid='00000000-0000-0000-0000-000000000001'\non_reboot='rename-restart'\n"))
	f.Add([]byte("x = [ [ 'nested' ] ]\n"))
	f.Add([]byte("name='\\'quoted\\''\n# comment\n\n"))
	f.Add([]byte("name='a'\nname='b'\nextra='x'\nextra+=' y'\ndisk=['/a,raw,xvda,rw']\ndisk+=['/b,raw,xvdb,r']\n"))
	f.Add([]byte("name='a'\nbootloader='pygrub'\nbootloader_args='-q  --entry=1'\nvif=['rate=10Mb/s@20ms,devid=3,trusted']\n"))
	f.Add([]byte("name='a'\nvnc=1\nmemory='x'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		c, err := ParseXL("fuzz.cfg", data)
		lines := bytes.Count(data, []byte("\n")) + 1
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, not a ConfigError", err, err)
			}
			if ce.Line < 0 || ce.Line > lines+1 {
				t.Fatalf("error line %d outside the input's %d lines: %v", ce.Line, lines, err)
			}
			return
		}
		if c.Name == "" || !c.Type.valid() {
			t.Fatalf("accepted without name or type: %+v", c)
		}
		known := map[string]bool{}
		for _, k := range XLKeys {
			known[k] = true
		}
		for _, k := range scanXLKeys(data) {
			if !known[k.Key] && !xmIgnoredKeys[k.Key] {
				t.Fatalf("accepted unknown key %q", k.Key)
			}
		}
		d, err := buildDomainConfig(c)
		if err != nil {
			if strings.Contains(err.Error(), "vdev") {
				return // xlu_disk_parse accepts a disk without a vdev; libxl would refuse it too
			}
			t.Fatalf("parsed config does not build: %v", err)
		}
		freeConfigForTest(d)
	})
}

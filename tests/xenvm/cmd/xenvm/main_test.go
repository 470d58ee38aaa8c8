package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type cpioEntry struct {
	name string
	mode uint32
	data string
}

// parseNewc is an independent reader of newc archives, for the tests.
func parseNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at unaligned offset %d", off)
		}
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, nameLen := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+nameLen-1])
		p := off + 110 + nameLen
		p = (p + 3) &^ 3
		data := string(b[p : p+size])
		off = (p + size + 3) &^ 3
		if name == "TRAILER!!!" {
			return out
		}
		out = append(out, cpioEntry{name, uint32(mode), data})
	}
}

func TestCpioWriter(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.test"), []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tree", "sub", "x.cfg"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/x.cfg", filepath.Join(dir, "tree", "link")); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	w := newCpioWriter(&buf)
	if err := w.addDirs("/payload"); err != nil {
		t.Fatal(err)
	}
	if err := w.addFile("/payload/run", 0o755, time.Now(), []byte("#!/bin/sh\n")); err != nil {
		t.Fatal(err)
	}
	var files fileList
	for _, s := range []string{filepath.Join(dir, "a.test"), filepath.Join(dir, "tree") + ":/etc/t"} {
		if err := files.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		if err := w.addHostPath(f.host, f.guest); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}

	got := map[string]cpioEntry{}
	for _, e := range parseNewc(t, buf.Bytes()) {
		got[e.name] = e
	}
	want := map[string]struct {
		mode uint32
		data string
	}{
		"payload":         {0o040755, ""},
		"payload/run":     {0o100755, "#!/bin/sh\n"},
		"payload/a.test":  {0o100755, "binary"},
		"etc":             {0o040755, ""},
		"etc/t":           {0o040755, ""},
		"etc/t/sub":       {0o040755, ""},
		"etc/t/sub/x.cfg": {0o100644, "abc"},
		"etc/t/link":      {0o120777, "sub/x.cfg"},
	}
	for name, w := range want {
		e, ok := got[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if e.mode != w.mode || e.data != w.data {
			t.Errorf("%s: mode %o data %q, want %o %q", name, e.mode, e.data, w.mode, w.data)
		}
	}

	// GNU cpio, when present, must read it too.
	if cp, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command(cp, "-t", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -t: %v", err)
		}
		if !strings.Contains(string(out), "payload/a.test") {
			t.Errorf("cpio -t output lacks payload/a.test:\n%s", out)
		}
	}
}

func TestFileSpec(t *testing.T) {
	cases := map[string]string{
		"/tmp/x.test":            "/payload/x.test",
		"x.test:bin/y":           "/payload/bin/y",
		"x.test:/usr/local/bin/": "/usr/local/bin/x.test",
		"a/b/c.cfg:/etc/c.cfg":   "/etc/c.cfg",
		"x.test:sub/":            "/payload/sub/x.test",
	}
	for in, want := range cases {
		var f fileList
		if err := f.Set(in); err != nil {
			t.Fatal(err)
		}
		if f[0].guest != want {
			t.Errorf("%q: guest %q, want %q", in, f[0].guest, want)
		}
	}
}

func TestRunScript(t *testing.T) {
	s, err := runScript([]string{"A=1 2", "B=it's"}, []string{"./x.test", "-test.run", "Foo|Bar", ""})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"export A='1 2'\n",
		`export B='it'\''s'` + "\n",
		"exec ./x.test -test.run 'Foo|Bar' ''\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if _, err := runScript([]string{"1BAD=x"}, nil); err == nil {
		t.Error("bad env name accepted")
	}
	// The script must run under a POSIX shell and pass arguments unchanged.
	if sh, err := exec.LookPath("sh"); err == nil {
		s, _ := runScript([]string{"V=a b"}, []string{"sh", "-c", `printf '%s|' "$V" "$@"`, "x", "it's", "*"})
		out, err := exec.Command(sh, "-c", s).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "a b|it's|*|" {
			t.Errorf("got %q", out)
		}
	}
}

func TestQemuArgsEscapeCommas(t *testing.T) {
	c := &config{imageDir: "/img", dom0Mem: "1024M", smp: 2, cpu: "qemu64", mem: "3G",
		xenstored: "oxenstored", dom0Args: "a=b,c"}
	args := qemuArgs(c, "/tmp/x,y/initrd.img", "id1")
	var initrd string
	for i, a := range args {
		if a == "-initrd" {
			initrd = args[i+1]
		}
	}
	if !strings.Contains(initrd, "a=b,,c") || !strings.HasSuffix(initrd, ",/tmp/x,,y/initrd.img") {
		t.Errorf("bad -initrd %q", initrd)
	}
	if strings.Count(strings.ReplaceAll(initrd, ",,", ""), ",") != 1 {
		t.Errorf("want exactly two modules in %q", initrd)
	}
}

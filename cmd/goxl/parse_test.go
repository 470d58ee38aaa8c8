package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var testOpts = []option{
	{short: 'p'}, {short: 'q'}, {short: 'c'}, {short: 'f', arg: "FILE"},
	{short: 'a', long: "all"}, {short: 't', arg: "TYPE"}, {long: "json"},
}

func TestParseArgsAsXL(t *testing.T) {
	for _, tc := range []struct {
		args []string
		opts map[string]string
		pos  []string
	}{
		{[]string{"guest.cfg", "-p"}, map[string]string{"p": ""}, []string{"guest.cfg"}},
		{[]string{"-p", "guest.cfg"}, map[string]string{"p": ""}, []string{"guest.cfg"}},
		{[]string{"-pq", "guest.cfg"}, map[string]string{"p": "", "q": ""}, []string{"guest.cfg"}},
		{[]string{"guest.cfg", "-qpc", "memory=512"}, map[string]string{"p": "", "q": "", "c": ""}, []string{"guest.cfg", "memory=512"}},
		{[]string{"-f", "g.cfg", "x=1"}, map[string]string{"f": "g.cfg"}, []string{"x=1"}},
		{[]string{"-fg.cfg"}, map[string]string{"f": "g.cfg"}, nil},
		{[]string{"-pf", "g.cfg"}, map[string]string{"p": "", "f": "g.cfg"}, nil},
		{[]string{"-pfg.cfg"}, map[string]string{"p": "", "f": "g.cfg"}, nil},
		{[]string{"--all", "-t", "serial", "d"}, map[string]string{"all": "", "t": "serial"}, []string{"d"}},
		{[]string{"-a"}, map[string]string{"all": ""}, nil},
		{[]string{"d", "--json"}, map[string]string{"json": ""}, []string{"d"}},
		{[]string{"--", "-p", "x"}, map[string]string{}, []string{"-p", "x"}},
		{[]string{"-p", "--", "-q"}, map[string]string{"p": ""}, []string{"-q"}},
		{[]string{"-"}, map[string]string{}, []string{"-"}},
	} {
		p, err := parseArgs(testOpts, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(p.opts, tc.opts) || !reflect.DeepEqual(p.args, tc.pos) {
			t.Errorf("%q: opts %v args %q; want %v %q", tc.args, p.opts, p.args, tc.opts, tc.pos)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-x"}, "unknown option -x"},
		{[]string{"-px"}, "unknown option -x"},
		{[]string{"--nope"}, "unknown option --nope"},
		{[]string{"-f"}, "needs an argument"},
		{[]string{"-t"}, "needs an argument"},
		{[]string{"--all=1"}, "takes no argument"},
	} {
		_, err := parseArgs(testOpts, tc.args)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

// Help goes to stdout with exit 0 in every spelling; each verb's help
// names every one of its options.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errw := runGoxl(t, args...)
		if code != exitOK || errw != "" || !strings.Contains(out, "usage: goxl") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errw)
		}
		for name, v := range verbs {
			if !strings.Contains(out, "\n  "+name+" ") || !strings.Contains(out, v.summary) {
				t.Errorf("%q: verb %s missing from the list", args, name)
			}
		}
	}
	for name, v := range verbs {
		for _, args := range [][]string{{"help", name}, {name, "-h"}, {name, "--help"}, {name, "x", "-h"}} {
			code, out, errw := runGoxl(t, args...)
			if code != exitOK || errw != "" || !strings.HasPrefix(out, "usage: goxl "+name) {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errw)
				continue
			}
			for _, o := range v.opts {
				if !strings.Contains(out, o.synopsis()) || !strings.Contains(out, o.help) {
					t.Errorf("%q: option %s missing", args, o.synopsis())
				}
			}
			if !strings.Contains(out, "--json result:") {
				t.Errorf("%q: the --json result shape is not documented", args)
			}
		}
	}
	if code, out, _ := runGoxl(t, "help", "json"); code != exitOK || !strings.Contains(out, `"ok": false`) {
		t.Errorf("help json: %d %q", code, out)
	}
}

// Usage errors: usage on stderr, nothing on stdout, exit 2.
func TestUsageOnStderr(t *testing.T) {
	for _, args := range [][]string{
		{}, {"bogus"}, {"help", "bogus"}, {"--nope", "list"}, {"create", "-x", "g.cfg"}, {"list", "--bogus"},
		{"destroy"}, {"save", "d"}, {"shutdown"}, {"shutdown", "-a", "d"}, {"console", "-t", "vga", "d"},
		{"console", "-n", "x", "d"}, {"mem-set", "d", "12q"}, {"vcpu-set", "d", "0"}, {"domname", "web"},
		{"create"}, {"create", "g.cfg", "notakeyvalue"},
	} {
		code, out, errw := runFake(t, newFake(), args...)
		if code != exitUsage || out != "" || !strings.Contains(errw, "usage") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errw)
		}
	}
}

package main

import (
	"fmt"
	"io"
	"strings"
)

// verb is one goxl verb: its synopsis, help, options and how many
// positional arguments it takes.
type verb struct {
	name    string
	args    string // positional synopsis
	summary string // one line for `goxl help`
	help    string // paragraphs for `goxl help VERB`
	result  string // the --json result's shape
	min     int
	max     int // -1: any
	opts    []option
	run     func(e *env, p *parsed) error
}

func (v *verb) synopsis() string {
	s := "goxl " + v.name
	if len(v.opts) > 0 {
		s += " [options]"
	}
	if v.args != "" {
		s += " " + v.args
	}
	return s
}

func (v *verb) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", v.synopsis(), v.summary)
	if v.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(v.help))
	}
	fmt.Fprintln(w, "\noptions:")
	printOptions(w, append(append([]option{}, v.opts...), helpOption, jsonOption))
	if v.result != "" {
		fmt.Fprintf(w, "\n--json result: %s\n", strings.TrimSpace(v.result))
	}
}

var verbs = map[string]*verb{}

func init() {
	for _, v := range verbList() {
		verbs[v.name] = v
	}
}

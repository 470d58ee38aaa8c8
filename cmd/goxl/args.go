package main

import (
	"fmt"
	"io"
	"strings"
)

// option is one option of a verb, as xl spells them: a short letter, a
// long name, or both; arg names its argument ("" for a flag).
type option struct {
	short rune
	long  string
	arg   string
	help  string
}

// key is the name an option is stored under: its long name if it has
// one, else its letter.
func (o option) key() string {
	if o.long != "" {
		return o.long
	}
	return string(o.short)
}

func (o option) synopsis() string {
	var parts []string
	if o.short != 0 {
		s := "-" + string(o.short)
		if o.arg != "" && o.long == "" {
			s += " " + o.arg
		}
		parts = append(parts, s)
	}
	if o.long != "" {
		s := "--" + o.long
		if o.arg != "" {
			s += "=" + o.arg
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// helpOption and jsonOption are accepted by every verb.
var (
	helpOption = option{short: 'h', long: "help", help: "print this help on stdout and exit 0"}
	jsonOption = option{long: "json", help: "print one JSON document on stdout (see goxl help json)"}
)

// parsed is a verb's command line after parsing.
type parsed struct {
	opts map[string]string
	// times counts how often each flag was given (xl's -ww).
	times map[string]int
	args  []string
}

func (p *parsed) flag(key string) bool { _, ok := p.opts[key]; return ok }
func (p *parsed) count(key string) int { return p.times[key] }
func (p *parsed) value(key string) string {
	return p.opts[key]
}

// parseArgs parses args as xl does (getopt with argument permutation):
// options may come before or after positionals, short flags combine
// (-pq), a short option's argument is the rest of its word or the next
// word (-fFILE, -f FILE), long options take --name=value or --name value,
// and "--" ends the options. A lone "-" is a positional.
func parseArgs(opts []option, args []string) (*parsed, error) {
	p := &parsed{opts: map[string]string{}, times: map[string]int{}}
	byShort := map[rune]option{}
	byLong := map[string]option{}
	for _, o := range opts {
		if o.short != 0 {
			byShort[o.short] = o
		}
		if o.long != "" {
			byLong[o.long] = o
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			p.args = append(p.args, args[i+1:]...)
			return p, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, ok := byLong[name]
			if !ok {
				return nil, usageError{fmt.Sprintf("unknown option --%s", name)}
			}
			switch {
			case o.arg == "" && hasVal:
				return nil, usageError{fmt.Sprintf("option --%s takes no argument", name)}
			case o.arg != "" && !hasVal:
				if i+1 >= len(args) {
					return nil, usageError{fmt.Sprintf("option --%s needs an argument (%s)", name, o.arg)}
				}
				i++
				val = args[i]
			}
			p.opts[o.key()] = val
			if o.arg == "" {
				p.times[o.key()]++
			}
		case len(a) > 1 && a[0] == '-':
			letters := []rune(a[1:])
			for j := 0; j < len(letters); j++ {
				o, ok := byShort[letters[j]]
				if !ok {
					return nil, usageError{fmt.Sprintf("unknown option -%c", letters[j])}
				}
				if o.arg == "" {
					p.opts[o.key()] = ""
					p.times[o.key()]++
					continue
				}
				val := string(letters[j+1:])
				if val == "" {
					if i+1 >= len(args) {
						return nil, usageError{fmt.Sprintf("option -%c needs an argument (%s)", o.short, o.arg)}
					}
					i++
					val = args[i]
				}
				p.opts[o.key()] = val
				break
			}
		default:
			p.args = append(p.args, a)
		}
	}
	return p, nil
}

// printOptions writes an option table.
func printOptions(w io.Writer, opts []option) {
	width := 0
	for _, o := range opts {
		width = max(width, len(o.synopsis()))
	}
	for _, o := range opts {
		fmt.Fprintf(w, "  %-*s  %s\n", width, o.synopsis(), o.help)
	}
}

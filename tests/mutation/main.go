package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// mutation is one entry of mutations.txt.
type mutation struct {
	Name    string
	File    string
	Old     string
	New     string
	Count   int // how many times Old must occur (default 1); all are replaced
	Pkg     string
	Run     string // -run regexp: the tests that must catch it
	Tags    string
	Race    bool
	Short   bool
	Timeout time.Duration
	Line    int // where it starts in mutations.txt
}

type outcome int

const (
	killed outcome = iota
	survived
	broken   // the mutated tree does not build
	notFound // Old is not in File (as often as Count says)
	baselineFailed
)

func (o outcome) String() string {
	return [...]string{"killed", "SURVIVED", "BROKEN (does not build)", "NOT FOUND", "BASELINE FAILED"}[o]
}

type result struct {
	m       *mutation
	outcome outcome
	by      []string // failing tests
	took    time.Duration
	output  string
}

func main() {
	jobs := flag.Int("j", 2, "mutations run in parallel (each in its own copy of the tree)")
	file := flag.String("f", "tests/mutation/mutations.txt", "the mutation list")
	only := flag.String("only", "", "run only the mutations whose name matches this regexp")
	list := flag.Bool("list", false, "list the mutations and check that their text is found; run nothing")
	verbose := flag.Bool("v", false, "print the output of each test run")
	flag.Parse()
	start := time.Now()

	root, err := repoRoot()
	if err != nil {
		fatal(err)
	}
	ms, err := parse(filepath.Join(root, *file))
	if err != nil {
		fatal(err)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fatal(err)
		}
		var keep []*mutation
		for _, m := range ms {
			if re.MatchString(m.Name) {
				keep = append(keep, m)
			}
		}
		ms = keep
	}
	if len(ms) == 0 {
		fatal(errors.New("no mutations to run"))
	}

	// Every mutation's text must be where it says, before anything runs.
	var results []*result
	var runnable []*mutation
	for _, m := range ms {
		if err := checkFound(root, m); err != nil {
			results = append(results, &result{m: m, outcome: notFound, output: err.Error()})
			continue
		}
		runnable = append(runnable, m)
	}
	if *list {
		for _, m := range ms {
			fmt.Printf("%-66s %s | %s -run %s\n", m.Name, m.File, m.Pkg, m.Run)
		}
		if len(results) != 0 {
			os.Exit(report(results, start))
		}
		fmt.Printf("mutation: %d mutations, every old text found\n", len(ms))
		return
	}

	files, err := gitFiles(root)
	if err != nil {
		fatal(err)
	}
	if *jobs < 1 {
		*jobs = 1
	}
	if *jobs > len(runnable) {
		*jobs = len(runnable)
	}
	fmt.Printf("mutation: %d mutations, %d worker(s), tree of %d files\n", len(ms), *jobs, len(files))

	// Baseline first: every named test, unmutated, grouped per package
	// and build flags, must pass; otherwise "killed" would mean nothing.
	groups := map[string][]*mutation{}
	var keys []string
	for _, m := range runnable {
		k := groupKey(m)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], m)
	}
	sort.Strings(keys)

	work := make(chan func(dir string), len(runnable)+len(keys))
	var mu sync.Mutex
	baselineBad := map[string]string{}
	var bwg sync.WaitGroup
	for _, k := range keys {
		g := groups[k]
		bwg.Add(1)
		work <- func(dir string) {
			defer bwg.Done()
			var runs []string
			var timeout time.Duration
			for _, m := range g {
				runs = append(runs, "(?:"+m.Run+")")
				timeout = max(timeout, m.Timeout)
			}
			ok, out, _ := goTest(dir, g[0], strings.Join(runs, "|"), 2*timeout)
			if *verbose {
				fmt.Printf("--- baseline %s\n%s\n", k, out)
			}
			if !ok {
				mu.Lock()
				baselineBad[k] = out
				mu.Unlock()
			}
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < *jobs; w++ {
		dir := filepath.Join(root, ".build", "mutation", fmt.Sprintf("w%d", w))
		if err := syncTree(root, dir, files); err != nil {
			fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				f(dir)
			}
		}()
	}
	bwg.Wait()
	tb := time.Since(start)
	fmt.Printf("mutation: baseline of %d test group(s) done at %.0f s\n", len(keys), tb.Seconds())

	var rwg sync.WaitGroup
	for _, m := range runnable {
		m := m
		k := groupKey(m)
		if out, bad := baselineBad[k]; bad {
			results = append(results, &result{m: m, outcome: baselineFailed, output: out})
			continue
		}
		r := &result{m: m}
		results = append(results, r)
		rwg.Add(1)
		work <- func(dir string) {
			defer rwg.Done()
			t0 := time.Now()
			runOne(dir, r)
			r.took = time.Since(t0)
			mu.Lock()
			fmt.Printf("  %-8s %-58s %5.1f s %s\n", r.outcome, m.Name, r.took.Seconds(), strings.Join(r.by, ","))
			if *verbose || r.outcome != killed {
				fmt.Println(indent(tail(r.output, 40)))
			}
			mu.Unlock()
		}
	}
	rwg.Wait()
	close(work)
	wg.Wait()
	os.Exit(report(results, start))
}

// groupKey: mutations with the same key share one baseline run.
func groupKey(m *mutation) string {
	return m.Pkg + "|" + m.Tags + "|" + strconv.FormatBool(m.Race) + "|" + strconv.FormatBool(m.Short)
}

// runOne applies r.m in dir, runs its tests and restores the file.
func runOne(dir string, r *result) {
	m := r.m
	path := filepath.Join(dir, m.File)
	orig, err := os.ReadFile(path)
	if err != nil {
		r.outcome, r.output = notFound, err.Error()
		return
	}
	defer os.WriteFile(path, orig, 0o644)
	if n := strings.Count(string(orig), m.Old); n != m.Count {
		r.outcome, r.output = notFound, fmt.Sprintf("old text found %d times in the copy, want %d", n, m.Count)
		return
	}
	mutated := strings.ReplaceAll(string(orig), m.Old, m.New)
	if err := os.WriteFile(path, []byte(mutated), 0o644); err != nil {
		r.outcome, r.output = broken, err.Error()
		return
	}
	ok, out, buildFailed := goTest(dir, m, m.Run, m.Timeout)
	r.output = out
	switch {
	case buildFailed:
		r.outcome = broken
	case ok:
		r.outcome = survived
	default:
		r.outcome = killed
		r.by = failingTests(out)
	}
}

// goTest runs the named tests of m's package in dir. ok: they passed;
// buildFailed: the package or its tests did not compile.
func goTest(dir string, m *mutation, run string, timeout time.Duration) (ok bool, out string, buildFailed bool) {
	// -vet=off: a mutation is killed by its tests, not by vet (the check
	// phase vets the tree), and vet costs every rebuild a second.
	args := []string{"test", "-trimpath", "-vet=off", "-count=1", "-v", "-timeout", timeout.String(), "-run", run}
	if m.Race {
		args = append(args, "-race")
	}
	if m.Short {
		args = append(args, "-short")
	}
	if m.Tags != "" {
		args = append(args, "-tags", m.Tags)
	}
	args = append(args, strings.Fields(m.Pkg)...)
	// The hard bound is go test's own -timeout plus the build.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOXL_TRACE=")
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	out = b.String()
	if err == nil {
		if !strings.Contains(out, "--- PASS") && !strings.Contains(out, "=== RUN") {
			// -run matched nothing: nothing was checked.
			return false, out + "\nmutation: -run " + run + " matched no test in " + m.Pkg, false
		}
		return true, out, false
	}
	buildFailed = strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]")
	return false, out, buildFailed
}

var failRE = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

func failingTests(out string) []string {
	seen := map[string]bool{}
	var names []string
	for _, sm := range failRE.FindAllStringSubmatch(out, -1) {
		name := sm[1]
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = name[:i]
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		if strings.Contains(out, "panic: test timed out") {
			return []string{"(timeout: " + timedOutTest(out) + ")"}
		}
		if strings.Contains(out, "WARNING: DATA RACE") {
			return []string{"(data race)"}
		}
		// The binary died (a panic that was not recovered): the test
		// running then is the last one started.
		if runs := startRE.FindAllStringSubmatch(out, -1); len(runs) > 0 {
			return []string{runs[len(runs)-1][1] + " (crashed)"}
		}
		return []string{"(test binary failed)"}
	}
	return names
}

var startRE = regexp.MustCompile(`(?m)^=== RUN\s+(Test[^/\s]+)`)

var runningRE = regexp.MustCompile(`(?m)^\s+(Test\S+) \(`)

func timedOutTest(out string) string {
	if sm := runningRE.FindStringSubmatch(out[strings.Index(out, "panic: test timed out"):]); sm != nil {
		return sm[1]
	}
	return "?"
}

func report(results []*result, start time.Time) int {
	sort.SliceStable(results, func(i, j int) bool { return results[i].m.Line < results[j].m.Line })
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MUTATION\tFILE\tRESULT\tKILLED BY")
	bad := 0
	for _, r := range results {
		by := strings.Join(r.by, ", ")
		if r.outcome != killed {
			bad++
			by = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.m.Name, r.m.File, r.outcome, by)
	}
	tw.Flush()
	for _, r := range results {
		if r.outcome == notFound || r.outcome == baselineFailed {
			fmt.Printf("\n%s (%s, mutations.txt line %d): %s\n", r.outcome, r.m.Name, r.m.Line, tail(r.output, 30))
		}
	}
	printSlowest(results, 5)
	el := time.Since(start)
	if bad != 0 {
		fmt.Printf("\nmutation: FAIL: %d of %d mutations not killed (%.0f s)\n", bad, len(results), el.Seconds())
		return 1
	}
	fmt.Printf("\nmutation: all %d mutations killed in %.0f s\n", len(results), el.Seconds())
	return 0
}

// printSlowest names the n mutations that took longest to build and
// test: where to look first when the phase outgrows its budget.
func printSlowest(results []*result, n int) {
	byTime := append([]*result(nil), results...)
	sort.SliceStable(byTime, func(i, j int) bool { return byTime[i].took > byTime[j].took })
	if len(byTime) > n {
		byTime = byTime[:n]
	}
	fmt.Print("\nslowest:")
	for _, r := range byTime {
		fmt.Printf(" %s (%.0f s);", r.m.Name, r.took.Seconds())
	}
	fmt.Println()
}

// ---- mutations.txt ----

// parse reads the block format described at the top of mutations.txt.
func parse(path string) ([]*mutation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []*mutation
	var cur *mutation
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	names := map[string]int{}
	finish := func() error {
		if cur == nil {
			return nil
		}
		m := cur
		cur = nil
		switch {
		case m.File == "" || m.Pkg == "" || m.Run == "":
			return fmt.Errorf("%s:%d: %q: file, pkg and run are required", path, m.Line, m.Name)
		case m.Old == "":
			return fmt.Errorf("%s:%d: %q: no old text", path, m.Line, m.Name)
		case m.Old == m.New:
			return fmt.Errorf("%s:%d: %q: old and new are the same", path, m.Line, m.Name)
		}
		if prev, dup := names[m.Name]; dup {
			return fmt.Errorf("%s:%d: %q: name already used at line %d", path, m.Line, m.Name, prev)
		}
		names[m.Name] = m.Line
		ms = append(ms, m)
		return nil
	}
	// readBlock reads lines up to a line that is exactly ">>>".
	readBlock := func() (string, error) {
		var lines []string
		for sc.Scan() {
			line++
			if sc.Text() == ">>>" {
				return strings.Join(lines, "\n"), nil
			}
			lines = append(lines, sc.Text())
		}
		return "", fmt.Errorf("%s: unterminated <<< block", path)
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") && !strings.HasPrefix(trimmed, "### ") {
			continue
		}
		if strings.HasPrefix(trimmed, "### ") {
			if err := finish(); err != nil {
				return nil, err
			}
			cur = &mutation{Name: strings.TrimSpace(trimmed[4:]), Count: 1, Timeout: 90 * time.Second, Line: line}
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: text outside a mutation: %q", path, line, text)
		}
		key, val, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want key: value", path, line)
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "file":
			cur.File = val
		case "pkg":
			cur.Pkg = val
		case "run":
			cur.Run = val
		case "tags":
			cur.Tags = val
		case "race":
			cur.Race = val == "yes" || val == "true"
		case "short":
			cur.Short = val == "yes" || val == "true"
		case "count":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%s:%d: bad count %q", path, line, val)
			}
			cur.Count = n
		case "timeout":
			d, err := time.ParseDuration(val)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad timeout %q", path, line, val)
			}
			cur.Timeout = d
		case "old", "new":
			var s string
			if val == "<<<" {
				var err error
				if s, err = readBlock(); err != nil {
					return nil, err
				}
			} else {
				s = val
			}
			if strings.TrimSpace(key) == "old" {
				cur.Old = s
			} else {
				cur.New = s
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown key %q", path, line, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return ms, nil
}

func checkFound(root string, m *mutation) error {
	b, err := os.ReadFile(filepath.Join(root, m.File))
	if err != nil {
		return err
	}
	if n := strings.Count(string(b), m.Old); n != m.Count {
		return fmt.Errorf("old text found %d time(s) in %s, want %d:\n%s", n, m.File, m.Count, m.Old)
	}
	return nil
}

// ---- the scratch trees ----

func repoRoot() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("mutation: run inside the goxl git tree: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitFiles lists the working tree's files that git tracks or would track.
func gitFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f == "" || strings.HasPrefix(f, ".build/") {
			continue
		}
		if st, err := os.Lstat(filepath.Join(root, f)); err == nil && st.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	return files, nil
}

// syncTree makes dir a copy of root's files, rewriting only files whose
// content differs (unchanged files keep their mtime) and deleting files
// that are no longer in the tree.
func syncTree(root, dir string, files []string) error {
	want := map[string]bool{}
	for _, f := range files {
		want[f] = true
		src, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, f)
		if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, src) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		st, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, src, st.Mode().Perm()); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !want[rel] {
			return os.Remove(p)
		}
		return nil
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if len(l) > 240 {
			lines[i] = l[:240] + " ..."
		}
	}
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return "      " + strings.ReplaceAll(s, "\n", "\n      ") }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutation:", err)
	os.Exit(2)
}

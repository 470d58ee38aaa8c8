package docrefs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	definedTest = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz|Example)\w*)\(`)
	namedTest   = regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z0-9]\w*)(\*?)`)
)

// walkRepo calls visit for each file of the repository, skipping the
// build directory and version control.
func walkRepo(t *testing.T, root string, visit func(path string, name string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".build":
				return filepath.SkipDir
			}
			return nil
		}
		visit(path, d.Name())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDocumentedTestsExist(t *testing.T) {
	root := filepath.Join("..", "..")
	defined := map[string]bool{}
	var docs []string
	walkRepo(t, root, func(path, name string) {
		switch {
		case strings.HasSuffix(name, "_test.go"):
			for _, m := range definedTest.FindAllStringSubmatch(read(t, path), -1) {
				defined[m[1]] = true
			}
		case name == "doc.go" || strings.HasSuffix(name, ".md"):
			docs = append(docs, path)
		}
	})
	if len(defined) < 100 || len(docs) < 5 {
		t.Fatalf("found %d tests and %d documents: not the repository root?", len(defined), len(docs))
	}
	checked := 0
	for _, doc := range docs {
		for _, m := range namedTest.FindAllStringSubmatch(read(t, doc), -1) {
			name, prefix := m[1], m[2] == "*"
			checked++
			if defined[name] {
				continue
			}
			if prefix && hasPrefixed(defined, name) {
				continue
			}
			rel, _ := filepath.Rel(root, doc)
			t.Errorf("%s names %s%s, which no _test.go file defines", rel, name, m[2])
		}
	}
	t.Logf("%d test names in %d documents checked against %d tests", checked, len(docs), len(defined))
}

func hasPrefixed(defined map[string]bool, prefix string) bool {
	for name := range defined {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

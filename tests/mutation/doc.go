// Command mutation is the mutation check of `make test`: it removes, one at
// a time, each protection that the README and the doc.go files claim, and
// expects a named test to fail.
//
// Each mutation in mutations.txt (see the header of that file) is an exact
// text replacement in one file. The check copies the working tree (the
// files git knows of, tracked or not ignored) into .build/mutation/wN, one
// copy per worker, applies the mutation there, runs only the named tests
// (`go test -count=1 [-race] [-tags T] -run R PKG`), records whether they
// failed (killed) or passed (survived), and restores the file. The copies
// keep fixed paths so that Go's build cache serves every unchanged package
// from one run to the next.
//
// It exits non-zero if a mutation survived, if its old text is not found
// exactly as often as it says (so that a refactor cannot silently retire a
// mutation), if a mutated tree does not build, or if a named test fails
// without its mutation (the baseline). It prints a table "mutation →
// test that killed it" and its wall time.
//
// Usage: go run ./tests/mutation [-j 2] [-only REGEXP] [-list] [-v]
//
// # Ownership, threads and locks
//
// Each worker goroutine owns one scratch tree (.build/mutation/wN) and
// runs one `go test` at a time in it, so a mutated file is never seen by
// another run; it restores the file before taking the next job. Results
// are written by the worker that owns them and read after all workers
// have finished; one mutex serialises the progress lines and the baseline
// table. Nothing here runs inside `go test`: the check is a command.
package main

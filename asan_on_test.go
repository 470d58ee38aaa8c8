//go:build asan

package goxl

// Under AddressSanitizer freed memory sits in a quarantine and malloc
// does not hand an address out again, so the tests that need address
// reuse cannot see it; they run in the race and model phases instead.
const asanBuild = true

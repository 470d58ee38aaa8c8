// Package docrefs checks that every test the documentation names exists.
//
// The README and the doc.go files back their claims with test names
// ("Tests: TestCloseDuringCreate, ..."). A renamed or deleted test would
// leave a claim that nothing checks; TestDocumentedTestsExist fails then.
// A name ending in * (TestRace1*) stands for every test with that prefix.
// It reads files only: no goroutines, locks or cgo.
package docrefs

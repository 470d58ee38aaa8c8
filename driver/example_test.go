package driver_test

// These examples need a Xen dom0: they are compiled by `go test`, not
// run (no Output comment). example_model_test.go runs the same flows
// against the contract model, with their output checked.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

// A driver, a domains manager, and a create bounded by a context. Close
// the Driver last: it closes the Domains built on it too, aborting and
// cleaning up whatever they were still doing.
func ExampleNew() {
	drv, err := driver.New(driver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer drv.Close()
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{PerOperationCtx: true})
	if err != nil {
		log.Fatal(err)
	}
	defer doms.Close()

	cfg, err := libxl.ParseXLFile("/etc/xen/guest.cfg")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dom, err := doms.Create(ctx, cfg, driver.CreateOptions{})
	if err != nil {
		// Nothing was left behind: a half-built domain was destroyed.
		log.Fatal(err)
	}
	fmt.Println(dom.Snapshot().Name, dom.Snapshot().State)
}

// The event stream: lifecycle events of every domain the manager knows.
// Each incarnation's events arrive once and in order, ending with one
// "death".
func ExampleDomains_Subscribe() {
	drv, err := driver.New(driver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer drv.Close()
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{})
	if err != nil {
		log.Fatal(err)
	}
	stream := doms.Subscribe(0)
	go func() {
		for ev := range stream.C() {
			fmt.Println(ev.DomID, ev.Name, ev.Kind, ev.State)
		}
		if errors.Is(stream.Err(), driver.ErrStreamOverflow) {
			log.Print("fell behind: list the domains and subscribe again")
		}
	}()
	// ... create, shut down, destroy domains ...
	doms.Close() // ends the stream
}

// Save a guest to a file and restore it. A failed save (a full disk, a
// cancelled context, Close) removes the partial file and leaves the
// guest running as it was, with its domid.
func ExampleDomains_Save() {
	drv, err := driver.New(driver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer drv.Close()
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{PerOperationCtx: true})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := doms.Save(ctx, "guest1", "/var/lib/goxl/guest1.save"); err != nil {
		log.Fatal(err) // guest1 still runs
	}
	dom, err := doms.Restore(ctx, "/var/lib/goxl/guest1.save", driver.CreateOptions{})
	if err != nil {
		log.Fatal(err) // nothing was left behind
	}
	fmt.Println(dom.Snapshot().Name, dom.Snapshot().State)
}

// Close while an operation runs: the operation is aborted and cleaned up
// before Close returns, and reports ErrDriverClosed.
func ExampleDriver_Close() {
	drv, err := driver.New(driver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := libxl.ParseXLFile("/etc/xen/guest.cfg")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := doms.Create(context.Background(), cfg, driver.CreateOptions{})
		done <- err
	}()
	time.Sleep(400 * time.Millisecond)
	if err := drv.Close(); err != nil { // closes doms too
		log.Print(err)
	}
	if err := <-done; errors.Is(err, driver.ErrDriverClosed) {
		fmt.Println("create aborted; no domain left")
	}
}

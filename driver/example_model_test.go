//go:build libxlmodel

package driver_test

// Runnable examples: the flows of example_test.go against the contract
// model of libxl (internal/libxlmodel), so that `make model` checks their
// output. The model's domains are fake; everything else (the loop, the
// bridge, the binding, the driver) is goxl's real code.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/libxl"
)

func exampleHost() {
	libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	libxlmodel.ResetDomains()
}

func exampleGuest(name string) *libxl.DomainConfig {
	return &libxl.DomainConfig{Name: name, Type: libxl.DomainTypePV, Kernel: "/boot/vmlinuz", MemoryMB: 128, VCPUs: 1}
}

// A driver, a create with a context, the event stream, and Close (the
// Driver closes the Domains built on it, which ends the stream).
func Example_createSubscribeClose() {
	exampleHost()
	drv, err := driver.New(driver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{ResyncInterval: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	stream := doms.Subscribe(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dom, err := doms.Create(ctx, exampleGuest("web1"), driver.CreateOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(dom.Snapshot().Name, dom.Snapshot().State)
	if err := doms.Destroy(ctx, "web1"); err != nil {
		fmt.Println(err)
	}
	if err := drv.Close(); err != nil {
		fmt.Println(err)
	}
	var kinds []string
	for ev := range stream.C() {
		kinds = append(kinds, ev.Kind)
	}
	// "destroyed" (the driver's step) may come before libxl's "death" or
	// not at all if libxl's event came first: the first and last events
	// of an incarnation are fixed.
	fmt.Println(kinds[0], kinds[len(kinds)-1], stream.Err())
	fmt.Println("domains left:", len(libxlmodel.Domains()))
	// Output:
	// web1 running
	// created death driver: event stream closed
	// domains left: 0
}

// Close during a create: the create is aborted, the half-built domain is
// destroyed before Close returns, and Create reports ErrDriverClosed.
func Example_closeDuringCreate() {
	exampleHost()
	libxlmodel.SetCreateDelay(500) // a build that takes 500 ms
	defer libxlmodel.SetCreateDelay(0)
	drv, err := driver.New(driver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{ResyncInterval: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() {
		_, err := doms.Create(context.Background(), exampleGuest("web2"), driver.CreateOptions{})
		done <- err
	}()
	for len(libxlmodel.Domains()) == 0 {
		time.Sleep(time.Millisecond) // until libxl made the domain
	}
	if err := drv.Close(); err != nil {
		fmt.Println(err)
	}
	err = <-done
	fmt.Println("create aborted:", errors.Is(err, driver.ErrDriverClosed))
	fmt.Println("domains left:", len(libxlmodel.Domains()))
	// Output:
	// create aborted: true
	// domains left: 0
}

// A config that failed to parse is nil: Create says so with a typed error.
func Example_nilConfig() {
	exampleHost()
	drv, err := driver.New(driver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer drv.Close()
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{ResyncInterval: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	var cfg *libxl.DomainConfig // what a failed parse returns
	_, err = doms.Create(context.Background(), cfg, driver.CreateOptions{})
	fmt.Println(errors.Is(err, libxl.ErrNilConfig))
	// Output:
	// true
}

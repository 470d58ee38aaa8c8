# goxl: `make demo` and `make test` are the two commands of the README.
# Each installs the Debian packages it needs first (see `deps`).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go

# Debian packages: building (cgo, libxl), testing (ASan is in gcc), and
# the Xen-under-QEMU harness. Bench adds libvirt-dev for the comparison.
BUILD_PKGS := gcc libc6-dev libxen-dev libyajl-dev
BENCH_PKGS := libvirt-dev
include tests/xenvm/xenvm.mk

# Test phases' knobs.
# A count, not a duration: a duration ends with a context deadline that Go's
# fuzz coordinator can report as a failure when a worker is mid-input.
FUZZTIME ?= 100000x
XEN_TIMEOUT ?= 1500s
# The test binary's own limit is shorter than the boot's, so that a hang
# ends in Go's goroutine dump (and the C stacks of tests/integration's
# TestMain) before xenvm kills the machine.
XEN_TEST_TIMEOUT ?= 1380s
# HVM guests need SVM with nested paging from QEMU; that CPU boots the PV
# dom0 more slowly, so only the HVM tests run under it, in a second boot.
XEN_HVM_CPU ?= max,-smap,-rdtscp
XEN_HVM_TESTS ?= ^TestHVM
# Extra flags for the integration test binary of the first boot, e.g.
# -goxl.coredump (the daemon's crashing guest is core-dumped: 60-100 s more).
XEN_TEST_FLAGS ?=
BUILD := .build

.PHONY: all deps bench-deps test check unit model asan fuzz xen xen-asan xen42 demo bench bench-xen clean

all: check

# apt-get update once, and only when something is missing.
define apt_ensure
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_ensure,$(BUILD_PKGS) $(XENVM_HOST_PKGS))
	@$(GO) version >/dev/null || { echo "Go is missing: install Go >= 1.26 at /usr/local/go"; exit 1; }

bench-deps: deps
	$(call apt_ensure,$(BENCH_PKGS) gnuplot-nox)

# ---------------------------------------------------------------- test ----
# Every phase prints its wall time; the whole run stays well under 30 min.
test: deps
	@start=$$(date +%s); \
	for phase in check unit model mutation asan fuzz xen; do \
	  t0=$$(date +%s); echo "==> make $$phase"; \
	  $(MAKE) --no-print-directory $$phase; \
	  echo "==> $$phase: $$(( $$(date +%s) - t0 )) s"; \
	done; \
	echo "==> make test: all phases passed in $$(( $$(date +%s) - start )) s"; \
	echo "==> xen42: the Xen 4.2 tests did not run (they build Xen 4.2 from source): make xen42 XEN_SRC=<xen-project/xen git dir or checkout>"

# Formatting, vet in all three build configurations, and the !cgo build.
check:
	@unformatted=$$(gofmt -l . | grep -v '^$(BUILD)/' || true); \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags libxlmodel ./...
	$(GO) vet -tags xenintegration ./...
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) vet ./...

# Unit tests of the packages that link Debian's libxenlight; tests that
# need a dom0 skip with a message here and run in `make xen`. Pure-Go
# packages that do not link libxl (the loop, epoll, the checkers) behave the
# same with any tag: the model phase runs them, with -race.
UNIT_PKGS = $$($(GO) list -f '{{.ImportPath}}{{if .CgoFiles}} cgo{{end}}{{range .Deps}} {{.}}{{end}}' ./... | \
	awk '$$2 == "cgo" || / github.com\/goxl\/goxl\/libxl( |$$)/ {print $$1}')
unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# The bridge, libxl and the driver against the contract model of libxl,
# in all three modes (4.17, 4.2 unpatched, 4.2 patched), with -race.
model:
	$(GO) test -race -count=1 -tags libxlmodel ./...

# The mutation check (tests/mutation/mutations.txt): each protection the
# README and the doc.go files claim is removed in turn, in a scratch copy
# of the tree under $(BUILD)/mutation, and its named tests must fail. Fails
# if one survives or if a mutation's text is no longer found.
# Three jobs on two cores: the mutants that hang wait for a bound with the
# CPU idle, and a third job fills it (all 99 in 137 s with a warm build
# cache, against 230-340 s with two).
MUTATION_JOBS ?= 3
mutation:
	$(GO) run ./tests/mutation -j $(MUTATION_JOBS)

# The C side (bridge, libxl helpers, the model) under AddressSanitizer,
# LeakSanitizer included.
asan:
	$(GO) test -asan -count=1 -tags libxlmodel -short \
	  . ./libxl/ ./internal/libxlmodel/ ./driver/

# Each fuzz target briefly; run longer by hand with FUZZTIME=10m.
fuzz:
	@for target in $$($(GO) test -list '^Fuzz' ./libxl/ | grep '^Fuzz'); do \
	  echo "--- fuzz $$target ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./libxl/; \
	done

# The goxl CLI as installed: goxl is the daemon's client, built without cgo
# (it starts in a third of the time of a goxl that links libxl); the cgo
# goxl beside it, goxl-libxl, gets by exec whatever needs libxl in the
# process: no daemon, create -n, the daemon itself (cmd/goxl/handoff.go).
define build_goxl
	CGO_ENABLED=0 $(GO) build -o $(1)/goxl ./cmd/goxl/
	$(GO) build -o $(1)/goxl-libxl ./cmd/goxl/
endef
GOXL_FILES = --file $(1)/goxl:/usr/local/bin/goxl --file $(1)/goxl-libxl:/usr/local/bin/goxl-libxl

# Real Xen 4.17 under QEMU: the integration suite runs inside dom0.
xen: deps xenvm-image
	@mkdir -p $(BUILD)/xen
	$(GO) test -c -tags xenintegration -o $(BUILD)/xen/integration.test ./tests/integration/
	$(call build_goxl,$(BUILD)/xen)
	tests/xenvm/xenvm run --timeout $(XEN_TIMEOUT) \
	  --file $(BUILD)/xen/integration.test:/payload/integration.test \
	  $(call GOXL_FILES,$(BUILD)/xen) \
	  -- /payload/integration.test -test.v -test.count=1 -test.timeout=$(XEN_TEST_TIMEOUT) $(XEN_TEST_FLAGS)
	@echo "==> xen: HVM tests, second boot with an SVM CPU (--cpu $(XEN_HVM_CPU))"
	tests/xenvm/xenvm run --timeout $(XEN_TIMEOUT) --cpu $(XEN_HVM_CPU) \
	  --file $(BUILD)/xen/integration.test:/payload/integration.test \
	  -- /payload/integration.test -test.v -test.count=1 -test.timeout=$(XEN_TEST_TIMEOUT) -test.run '$(XEN_HVM_TESTS)'

# ------------------------------------------------------------ xen-asan ----
# Not part of make test (about 6 minutes more): the integration tests
# that allocate most in C (save, restore, Close during create, cancel,
# concurrent creates, ctx churn, and the HVM lifecycle XEN_ASAN_HVM_COUNT
# times in the second boot) with the test process under AddressSanitizer
# on real Xen. A heap error in goxl, libxl, libxenstore or libxenguest in
# that process is reported where it happens, with its stack. LeakSanitizer
# is off: libxl keeps some allocations for the process's lifetime. The
# soak is left out: ASan's quarantine of freed memory grows its RSS.
XEN_ASAN_TESTS ?= ^(TestSaveRestore|TestSaveRestoreBoundaries|TestCloseDuringCreate|TestDestroyDuringCreate|TestCreateCancelLeavesNothing|TestConcurrentCreatesEventsOnce|TestCtxChurnWhileWatchEventsArrive)$$
XEN_ASAN_HVM_COUNT ?= 10
XEN_ASAN_LIB := /usr/lib/x86_64-linux-gnu/libasan.so.8
xen_asan_run = tests/xenvm/xenvm run $(1) --timeout $(XEN_TIMEOUT) --env ASAN_OPTIONS=detect_leaks=0 \
	--file $(BUILD)/xen-asan/integration.test:/payload/integration.test \
	--file $$(readlink -f $(XEN_ASAN_LIB)):$(XEN_ASAN_LIB) \
	-- /payload/integration.test -test.v -test.timeout=$(XEN_TEST_TIMEOUT)
xen-asan: deps xenvm-image
	@mkdir -p $(BUILD)/xen-asan
	$(GO) test -c -asan -tags xenintegration -o $(BUILD)/xen-asan/integration.test ./tests/integration/
	$(call xen_asan_run,) -test.count=1 -test.run '$(XEN_ASAN_TESTS)'
	$(call xen_asan_run,--cpu $(XEN_HVM_CPU)) -test.count=$(XEN_ASAN_HVM_COUNT) -test.run '$(XEN_HVM_TESTS)'

# --------------------------------------------------------------- xen42 ----
# Real Xen 4.2 under QEMU (tests/xen42/README.md): builds 4.2.1 (pristine
# and with xen-patches/) and 4.2.2 from XEN_SRC, cached in $(BUILD)/xen42,
# then runs the integration suite in the three modes.
XEN42_VERSIONS ?= 4.2.1 4.2.2
XEN42_PKGS := bison flex pkg-config libglib2.0-dev libaio-dev uuid-dev libyajl-dev \
	libncurses-dev gettext zlib1g-dev libbz2-dev liblzma-dev libssl-dev patch
xen42: deps xenvm-image
	@[ -n "$(XEN_SRC)" ] || { echo "make xen42: set XEN_SRC to a git dir or a checkout of xen-project/xen"; exit 2; }
	$(call apt_ensure,$(XEN42_PKGS))
	@start=$$(date +%s); echo "==> make xen42: start, load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	XEN_SRC="$(XEN_SRC)" XEN42_VERSIONS="$(XEN42_VERSIONS)" tests/xen42/build || exit 1; \
	echo "==> xen42: builds ready in $$(( $$(date +%s) - start )) s"; \
	rc=0; tests/xen42/run $$(for v in $(XEN42_VERSIONS); do case $$v in 4.2.[01]) echo $$v-pristine $$v-series;; *) echo $$v;; esac; done) || rc=$$?; \
	echo "==> make xen42: rc=$$rc in $$(( $$(date +%s) - start )) s, load $$(cut -d' ' -f1-3 /proc/loadavg)"; exit $$rc

# ---------------------------------------------------------------- demo ----
demo: deps
	@mkdir -p $(BUILD)/demo
	@echo "==> preparing: the dom0 image (cached) and the goxl CLI"
	@$(MAKE) -s --no-print-directory xenvm-image >$(BUILD)/demo/prepare.log 2>&1 || { cat $(BUILD)/demo/prepare.log; exit 1; }
	@$(call build_goxl,$(BUILD)/demo)
	@echo "==> booting Xen 4.17 under QEMU (software emulation: about 10-20 s)"
	@tests/xenvm/xenvm run --quiet --timeout 600s \
	  $(call GOXL_FILES,$(BUILD)/demo) \
	  --file tests/demo.sh:/payload/demo.sh \
	  -- /bin/sh /payload/demo.sh

# --------------------------------------------------------------- bench ----
# Side by side in one run (docs/benchmarks.md): one table of ratios on
# stdout; raw figures in $(BUILD)/bench/raw.json, the table in table.md,
# the plot in dispatch.png. First the Xen-under-QEMU step (create/destroy
# through goxl and xl on one boot; BENCH_XEN=0 skips it), then the
# micro-benchmarks, so that QEMU does not run beside them.
BENCH_XEN ?= 1
BENCH_FLAGS ?=
# Xen step: create/destroy repetitions (0 skips them), then every CLI verb
# through the daemon, in-process and xl (0 skips the verbs), and QEMU's
# time limits (a loaded host boots dom0 in 5-10 min).
BENCH_XEN_REPS ?= 5
BENCH_VERBS ?= 3
BENCH_XEN_TIMEOUT ?= 2400s
BENCH_XEN_BOOT_TIMEOUT ?= 900s
bench: bench-deps
	@mkdir -p $(BUILD)/bench
	$(GO) build -tags 'libxlmodel libvirtbench' -o $(BUILD)/bench/benchtable ./tests/bench/cmd/benchtable/
	$(call build_goxl,$(BUILD)/bench)
	@if [ "$(BENCH_XEN)" = 1 ]; then $(MAKE) --no-print-directory bench-xen; fi
	@echo "==> bench: micro-benchmarks (interleaved, medians)"
	@xen=""; if [ "$(BENCH_XEN)" != 0 ]; then \
	  if [ -s $(BUILD)/bench/xen.json ]; then xen="$$xen -xen $(BUILD)/bench/xen.json"; fi; \
	  if [ -s $(BUILD)/bench/verbs.json ]; then xen="$$xen -verbs $(BUILD)/bench/verbs.json"; fi; \
	fi; \
	$(BUILD)/bench/benchtable -out $(BUILD)/bench $$xen $(BENCH_FLAGS)
	@if command -v gnuplot >/dev/null; then \
	  (cd $(BUILD)/bench && gnuplot plot.gp) && echo "plot: $(BUILD)/bench/dispatch.png"; fi

# The Xen step alone (BENCH_XEN=keep then makes `make bench` reuse its
# result instead of booting again).
bench-xen: deps xenvm-image
	@mkdir -p $(BUILD)/bench
	@rm -f $(BUILD)/bench/xen.json $(BUILD)/bench/verbs.json
	@echo "==> bench: Xen under QEMU (goxl vs xl: create/destroy, then every verb via daemon, direct, xl)"
	$(call build_goxl,$(BUILD)/bench)
	$(GO) build -o $(BUILD)/bench/xenbench ./tests/bench/cmd/xenbench/
	@tests/xenvm/xenvm run --timeout $(BENCH_XEN_TIMEOUT) --boot-timeout $(BENCH_XEN_BOOT_TIMEOUT) \
	  $(call GOXL_FILES,$(BUILD)/bench) \
	  --file $(BUILD)/bench/xenbench:/payload/xenbench \
	  -- /payload/xenbench -n $(BENCH_XEN_REPS) -verbs $(BENCH_VERBS) >$(BUILD)/bench/xen.log 2>&1 || true
	@grep -a 'xenbench: rep\|xenbench: verbs rep\|xenbench verbs:\|XENBENCH-VERBS |' $(BUILD)/bench/xen.log | tr -d '\r' || true
	@tr -d '\r' <$(BUILD)/bench/xen.log | grep -a -o 'XENBENCH-JSON {.*}' | tail -1 | cut -d' ' -f2- >$(BUILD)/bench/xen.json || true
	@[ -s $(BUILD)/bench/xen.json ] || \
	  echo '{"error":"the Xen step gave no result; see $(BUILD)/bench/xen.log"}' >$(BUILD)/bench/xen.json
	@tr -d '\r' <$(BUILD)/bench/xen.log | grep -a -o 'XENBENCH-VERBS-JSON {.*}' | tail -1 | cut -d' ' -f2- >$(BUILD)/bench/verbs.json || true

clean:
	rm -rf $(BUILD)/xen $(BUILD)/demo

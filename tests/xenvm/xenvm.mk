# Makefile fragment for the Xen-in-QEMU test harness (tests/xenvm).
# The top-level Makefile includes it:  include tests/xenvm/xenvm.mk
#
#   make xenvm-deps    install the host tools (apt-get; `apt-get update` only if
#                      something is missing)
#   make xenvm-image   build or refresh the cached dom0 image (seconds when warm)
#   make xenvm-check   boot Xen and check that `xl list` shows Domain-0
#   make xenvm-clean   drop the built image (keeps the downloaded .debs)

XENVM_DIR      := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
XENVM_CACHE    ?= $(abspath $(XENVM_DIR)/../../.build/xenvm)
XENVM          := $(XENVM_DIR)/xenvm
# Host packages: qemu-system-x86 runs Xen; cpio, kmod (depmod), zstd pack the
# image; xz-utils unpacks the guest kernel; binutils gives readelf for the
# shared-library check, and as and ld for the idle guest (idle-guest.S);
# apt-get download needs apt (always there on Debian).
XENVM_HOST_PKGS ?= qemu-system-x86 cpio kmod zstd xz-utils binutils
XENVM_APT_GET  ?= apt-get

export XENVM_CACHE

.PHONY: xenvm-deps xenvm-image xenvm-check xenvm-clean

xenvm-deps:
	@missing=""; \
	for p in $(XENVM_HOST_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "xenvm-deps: installing$$missing"; \
		$(XENVM_APT_GET) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(XENVM_APT_GET) install -y -qq --no-install-recommends $$missing; \
	else \
		echo "xenvm-deps: host packages present"; \
	fi

xenvm-image: xenvm-deps
	$(XENVM_DIR)/build-image.sh

xenvm-check: xenvm-image
	$(XENVM) shell-check

xenvm-clean:
	rm -rf $(XENVM_CACHE)/image $(XENVM_CACHE)/work $(XENVM_CACHE)/bin

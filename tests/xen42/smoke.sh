#!/bin/sh
# Payload for the 4.2 dom0 (tests/xen42/image): 4.2's xl against 4.2's
# hypervisor, then a PV guest created and destroyed with 4.2's xl, then
# goxl (linked against 4.2's libxenlight) listing domains.
set -e
echo "== xl info"
xl info | grep -E '^(xen_major|xen_minor|xen_extra|total_memory|free_memory|xen_caps)'
echo "== xl list"
xl list
grep -q '^Domain-0 ' <<EOT || { echo "SMOKE-FAIL: Domain-0 not listed"; exit 1; }
$(xl list)
EOT
echo "== xl create (PV, 4.2's xl)"
xl create /guest/guest.cfg 'name="g42"' 'extra="console=hvc0 guest_sleep=forever"'
xl list
xl list g42 >/dev/null || { echo "SMOKE-FAIL: g42 not running"; exit 1; }
if [ -x /usr/local/bin/goxl ]; then
	echo "== goxl list (libxenlight.so.2.0)"
	/usr/local/bin/goxl list || echo "SMOKE-NOTE: goxl list rc=$? (ErrUnpatched42 expected on unpatched 4.2.1)"
	echo "== goxl list, Xen42Serialised (GOXL_LIBXL_SAFE_MODE=1)"
	GOXL_LIBXL_SAFE_MODE=1 /usr/local/bin/goxl list || { echo "SMOKE-FAIL: serialised goxl list rc=$?"; exit 1; }
fi
echo "== xl destroy"
xl destroy g42
sleep 1
xl list
if xl list g42 >/dev/null 2>&1; then echo "SMOKE-FAIL: g42 still there"; exit 1; fi
echo "SMOKE-OK"

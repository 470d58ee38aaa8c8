#!/bin/sh
# The goxl demo, run inside dom0 of real Xen 4.17 (make demo boots it).
# It drives one guest's whole life with the goxl CLI while `goxl events`
# streams what libxl reports. Every line comes from goxl or from Xen.
set -e
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

sed -e 's/^name = .*/name = "demo"/' /guest/guest.cfg > /tmp/demo.cfg

say "Xen and libxl on this dom0"
/usr/lib/xen-4.17/bin/xl info 2>/dev/null | grep -E '^(xen_version|nr_cpus|total_memory|xen_caps)' || true

say "goxl list"
goxl list

say "goxl events (streaming in the background)"
goxl events 2>/dev/null | sed -u 's/^/    [event] /' &
EVENTS=$!
sleep 1

say "goxl create /tmp/demo.cfg   (an xl-style config: PV guest, 128 MiB)"
sed -n '/^[a-z]/p' /tmp/demo.cfg | sed 's/^/    /'
goxl create /tmp/demo.cfg

say "goxl list"
goxl list

say "goxl info demo"
goxl info demo

say "goxl pause demo; goxl unpause demo"
goxl pause demo
goxl list | grep -E '^(Name|demo)'
goxl unpause demo

say "goxl shutdown -w demo   (the guest powers itself off on request)"
goxl shutdown -w demo

say "goxl create /tmp/demo.cfg, then goxl destroy demo"
goxl create /tmp/demo.cfg
goxl destroy demo

say "goxl list"
goxl list
sleep 1
kill $EVENTS 2>/dev/null || true
wait $EVENTS 2>/dev/null || true
say "done"

#!/bin/sh
# The goxl demo, run inside dom0 of real Xen 4.17 (make demo boots it).
# It drives one guest's life with the goxl CLI while `goxl events`
# streams what libxl reports. Every line comes from goxl or from Xen.
set -e
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

sed -e 's/^name = .*/name = "demo"/' -e 's/^on_poweroff = .*/on_poweroff = "preserve"/' \
	/guest/guest.cfg > /tmp/demo.cfg

say "Xen and libxl on this dom0"
/usr/lib/xen-4.17/bin/xl info 2>/dev/null | grep -E '^(xen_version|nr_cpus|total_memory)' || true

say "goxl list"
goxl list

say "goxl events   (streams in the background; its lines start with [event])"
mkfifo /tmp/events
(while read -r line; do echo "    [event] $line"; done < /tmp/events) &
PRINTER=$!
goxl events 2>/dev/null > /tmp/events &
EVENTS=$!
sleep 1

say "goxl create /tmp/demo.cfg   (an xl-style config)"
sed -n '/^[a-z]/p' /tmp/demo.cfg | sed 's/^/    /'
goxl create /tmp/demo.cfg

say "goxl list"
goxl list

say "goxl info demo"
goxl info demo

say "goxl pause demo; goxl list; goxl unpause demo"
goxl pause demo
goxl list
goxl unpause demo

say "goxl shutdown -w demo   (the guest powers itself off on request; on_poweroff=preserve keeps it)"
goxl shutdown -w demo
goxl list

say "goxl destroy demo"
goxl destroy demo
goxl list

sleep 1
kill -INT $EVENTS 2>/dev/null || true
wait $EVENTS 2>/dev/null || true
wait $PRINTER 2>/dev/null || true
say "done"

#!/bin/sh
# The goxl demo, run inside dom0 of real Xen 4.17 (make demo boots it).
# It starts the goxl daemon, then drives one guest's life with the goxl CLI
# (its client) while `goxl events` streams what the daemon reports: a guest
# reboot that the daemon turns into a new incarnation (on_reboot=restart),
# and a power-off that it turns into a destroy (on_poweroff=destroy). Every
# line comes from goxl or from Xen.
set -e
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

sed -e 's/^name = .*/name = "demo"/' -e 's/^on_poweroff = .*/on_poweroff = "destroy"/' \
	-e 's/^on_reboot = .*/on_reboot = "restart"/' /guest/guest.cfg > /tmp/demo.cfg

say "Xen and libxl on this dom0"
/usr/lib/xen-4.17/bin/xl info 2>/dev/null | grep -E '^(xen_version|nr_cpus|total_memory)' || true

say "goxl daemon --foreground &   (one driver that owns the domains; the CLI becomes its client)"
goxl daemon --foreground 2>/tmp/goxld.log &
DAEMON=$!
i=0
until [ -S /run/goxl/goxld.sock ] && goxl list >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 300 ] || { cat /tmp/goxld.log; exit 1; }; sleep 0.2
done
ls -l /run/goxl/goxld.sock | sed 's/^/    /'

say "goxl list   (through the daemon's socket)"
goxl list

say "goxl events   (streams in the background; its lines start with [event])"
mkfifo /tmp/events
(while read -r line; do echo "    [event] $line"; done < /tmp/events) &
PRINTER=$!
goxl events 2>/dev/null > /tmp/events &
EVENTS=$!
sleep 1

say "goxl create /tmp/demo.cfg   (on_reboot=restart, on_poweroff=destroy)"
sed -n '/^[a-z]/p' /tmp/demo.cfg | sed 's/^/    /'
goxl create /tmp/demo.cfg
goxl list
sleep 4

say "goxl reboot demo   (the guest reboots; the daemon builds a new incarnation, as xl's monitor would)"
OLD=$(goxl domid demo)
goxl reboot demo
i=0
while NEW=$(goxl domid demo 2>/dev/null) && [ "$NEW" = "$OLD" ]; do
	i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.2
done
i=0
until goxl domid demo >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.2; done
echo "    demo was domain $OLD, now domain $(goxl domid demo)"
goxl list
sleep 4

say "goxl shutdown -w demo   (returns once the guest is down, as xl -w; on_poweroff=destroy: the daemon then destroys it)"
goxl shutdown -w demo
i=0
while goxl domid demo >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.2; done
goxl list

sleep 1
kill -INT $EVENTS 2>/dev/null || true
wait $EVENTS 2>/dev/null || true
wait $PRINTER 2>/dev/null || true

say "kill -TERM the daemon   (clean stop: domains would keep running and be taken over by the next daemon)"
kill -TERM $DAEMON
wait $DAEMON && echo "    daemon exited 0"
sed 's/^/    [daemon] /' /tmp/goxld.log | tail -12
say "done"

#!/bin/sh
# /init of the xenvm test guest (busybox sh, PID 1).
#
# Prints "XENVM-GUEST up", then waits. It powers off:
#  - when asked: `xl shutdown` / libxl_domain_shutdown write control/shutdown,
#    the kernel runs /sbin/poweroff (busybox), which signals PID 1 (SIGUSR2 for
#    poweroff, SIGTERM for reboot, SIGUSR1 for halt); the traps below turn that
#    into a real power-off or reboot, so the toolstack sees a clean
#    SHUTDOWN reason (poweroff / reboot);
#  - by itself after N seconds when the kernel command line has guest_sleep=N;
#    guest_sleep=forever or no guest_sleep means wait for a request.
# It crashes itself (a kernel panic through /proc/sysrq-trigger, which a PV
# kernel reports to Xen as SHUTDOWN reason crash) N seconds after boot when
# the command line has guest_crash=N: the on_crash tests use it.
# With guest_watchdog=N it starts Xen's watchdog (xen_wdt, timeout N s) and
# never feeds it: N s later Xen stops the domain with SHUTDOWN reason
# watchdog, which libxl reports apart from a crash (the on_watchdog test).
PATH=/sbin:/bin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

off() {
	echo "XENVM-GUEST $1"
	if [ "$1" = reboot ]; then reboot -f; else poweroff -f; fi
	while :; do sleep 60; done
}
trap 'off poweroff' USR2
trap 'off halt' USR1
trap 'off reboot' TERM INT

SLEEP=forever
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	guest_sleep=*) SLEEP=${arg#guest_sleep=} ;;
	guest_crash=*) CRASH=${arg#guest_crash=} ;;
	guest_watchdog=*) WATCHDOG=${arg#guest_watchdog=} ;;
	esac
done

echo "XENVM-GUEST up uptime=$(cut -d' ' -f1 /proc/uptime) sleep=$SLEEP"

case "${CRASH:-}" in
'' | *[!0-9]*) ;;
*) (sleep "$CRASH"; echo "XENVM-GUEST crash"; echo c >/proc/sysrq-trigger) & ;;
esac

case "${WATCHDOG:-}" in
'' | *[!0-9]*) ;;
*)
	# Opening /dev/watchdog starts Xen's timer; the descriptor stays open
	# in a subshell that never writes to it.
	if insmod /lib/modules/watchdog.ko && insmod /lib/modules/xen_wdt.ko timeout="$WATCHDOG"; then
		(exec 3>/dev/watchdog && echo "XENVM-GUEST watchdog armed timeout=$WATCHDOG" && while :; do sleep 3600; done) &
	else
		echo "XENVM-GUEST watchdog: xen_wdt did not load"
	fi
	;;
esac

# Sleep in the background and `wait` for it: the shell runs traps while in the
# `wait` builtin, but not while a foreground command runs.
case "$SLEEP" in
'' | forever | *[!0-9]*)
	while :; do
		sleep 3600 &
		wait $!
	done
	;;
*)
	sleep "$SLEEP" &
	wait $!
	off "poweroff (guest_sleep=$SLEEP expired)"
	;;
esac

#!/bin/sh
# /init of the Xen 4.2 dom0 (busybox sh, PID 1): tests/xenvm/dom0-init.sh
# with Xen 4.2's own tools. tests/xen42/image overlays it, with 4.2's
# tools, on the 4.17 dom0 image. Differences from 4.17's init:
#   - 4.2's binaries are first (/usr/sbin/xl is 4.2's xl, not Debian's
#     wrapper; /usr/lib/xen-4.17/bin is last);
#   - xenstored is 4.2's C xenstored by default: 4.17's oxenstored asks
#     libxenctrl 4.17 for domain info, which a 4.2 hypervisor refuses
#     (domctl interface version);
#   - 4.2 has no xen-init-dom0: its xencommons only writes dom0's name;
#   - xenconsoled is 4.2's (4.17's fails its first domctl too).
#
# Brings up the minimum a libxl toolstack needs (xenfs, xenstored, dom0 entry
# in xenstore, xenconsoled), runs /payload/run with its output on the console,
# prints the result marker and powers the machine off.
#
# Kernel command line knobs (set by the runner):
#   xenvm.id=ID              run id, echoed in the markers so the host matches
#                            only markers of its own run
#   xenvm.xenstored=NAME     oxenstored (default) or xenstored (the C daemon)
#   xenvm.shell=1            start a shell on the console instead of a payload

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
HOME=/root
TMPDIR=/tmp
export PATH HOME TMPDIR

ID=none
XENSTORED=xenstored
SHELL_MODE=0

say() { echo "xenvm-init: $*"; }

finish() {
	# $1: marker line. Flush, sync, power off; never return (PID 1 must not exit).
	echo "$1"
	sync
	poweroff -f
	while :; do sleep 60; done
}

setup_failed() {
	say "setup failed: $*"
	ps 2>/dev/null | head -n 40
	finish "XENVM-SETUP-FAILED id=$ID what=$(echo "$*" | tr ' ' '_')"
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
exec </dev/null >/dev/console 2>&1

for arg in $(cat /proc/cmdline); do
	case "$arg" in
	xenvm.id=*) ID=${arg#xenvm.id=} ;;
	xenvm.xenstored=*) XENSTORED=${arg#xenvm.xenstored=} ;;
	xenvm.shell=1) SHELL_MODE=1 ;;
	esac
done

up() { cut -d' ' -f1 /proc/uptime; }
say "dom0 up after $(up)s"
hostname xenvm-dom0
mkdir -p /run/xen /run/xenstored /run/lock /var/lib/xen /var/lib/xenstored \
	/var/log/xen/console /var/lib/xen/dump /tmp
ip link set lo up 2>/dev/null

T0=$(up)
# Each module load costs about a second under a loaded TCG: load what libxl
# needs; loop, tun, bridge, xen-netback, xen-pciback and xen-scsiback are in
# the image for a payload to modprobe.
for m in xenfs xen-evtchn xen-privcmd xen-gntdev xen-gntalloc xen-blkback; do
	modprobe "$m" 2>/dev/null || say "warning: modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen || setup_failed "mount xenfs"
grep -q control_d /proc/xen/capabilities 2>/dev/null || setup_failed "not running as Xen dom0"

T1=$(up)
say "modules and xenfs ready after ${T1}s; starting $XENSTORED"
# xenstored
case "$XENSTORED" in
oxenstored) oxenstored --pid-file /run/xenstored.pid ;;
xenstored | cxenstored) /usr/sbin/xenstored --pid-file /run/xenstored.pid ;;
*) setup_failed "unknown xenstored $XENSTORED" ;;
esac
i=0
until xenstore-read -s / >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 300 ] && setup_failed "xenstored ($XENSTORED) did not answer within 30s"
	sleep 0.1
done

T2=$(up)
say "xenstored answers after ${T2}s"
# 4.2's libxl_ctx_alloc stats /var/run/xenstored.pid ("Is xenstore daemon
# running?"); write it if the daemon did not.
mkdir -p /var/run
[ -e /var/run/xenstored.pid ] || pidof xenstored oxenstored | cut -d' ' -f1 >/var/run/xenstored.pid
ls -l /var/run/xenstored.pid /run/xenstored.pid 2>&1 | sed 's/^/xenvm-init: /'
# What 4.2's xencommons does in place of xen-init-dom0.
timeout 120 xenstore-write -s /local/domain/0/name Domain-0 || setup_failed "xenstore-write dom0 name"
say "dom0 name written after $(up)s"
# Guest consoles are logged to /var/log/xen/console/guest-NAME.log.
# 4.2's xenconsoled does not daemonize when its parent is PID 1
# (daemonize(): `if (getppid() == 1) return;`): start it in the background.
/usr/sbin/xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console &
sleep 1
kill -0 $! 2>/dev/null || setup_failed "xenconsoled"
say "xenconsoled started after $(up)s"

T3=$(up)
say "xen 4.2 toolstack: $(timeout 120 xl info 2>&1 | grep -E '^xen_(major|minor|extra)' | tr -s ' ' | tr '\n' ' ')"
say "xen toolstack ready after ${T3}s ($XENSTORED; modules+xenfs $T0-$T1, xenstored $T1-$T2, init-dom0+xenconsoled $T2-$T3)"

if [ "$SHELL_MODE" = 1 ]; then
	say "interactive shell (exit to power off)"
	setsid cttyhack sh -l </dev/console >/dev/console 2>&1
	finish "XENVM-RESULT rc=0 id=$ID"
fi

if [ ! -e /payload/run ]; then
	setup_failed "no /payload/run in the initrd"
fi
chmod +x /payload/run 2>/dev/null
cd /payload || setup_failed "cd /payload"
echo "XENVM-PAYLOAD-BEGIN id=$ID uptime=$(up)"
/payload/run </dev/null
rc=$?
cd /
echo "XENVM-PAYLOAD-END id=$ID uptime=$(up)"
finish "XENVM-RESULT rc=$rc id=$ID"

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
# prints the result marker and powers the machine off. The steps shared with
# the 4.17 dom0, and the kernel command line knobs, are in
# tests/xenvm/dom0-lib.sh (tests/xen42/image puts it in the overlay).

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
HOME=/root
TMPDIR=/tmp
export PATH HOME TMPDIR

XENSTORED=xenstored
. /usr/share/xenvm/dom0-lib.sh
dom0_setup

say "modules and xenfs ready after ${T1}s; starting $XENSTORED"
case "$XENSTORED" in
oxenstored) oxenstored --pid-file /run/xenstored.pid ;;
xenstored | cxenstored) /usr/sbin/xenstored --pid-file /run/xenstored.pid ;;
*) setup_failed "unknown xenstored $XENSTORED" ;;
esac
wait_xenstored

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

dom0_run_payload

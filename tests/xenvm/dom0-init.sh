#!/bin/sh
# /init of the xenvm dom0 (busybox sh, PID 1).
#
# Brings up the minimum a libxl toolstack needs (xenfs, xenstored, dom0 entry
# in xenstore, xenconsoled), runs /payload/run with its output on the console,
# prints the result marker and powers the machine off. The steps shared with
# the Xen 4.2 dom0, and the kernel command line knobs, are in dom0-lib.sh.

PATH=/usr/lib/xen-4.17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
TMPDIR=/tmp
export PATH HOME TMPDIR

XENSTORED=oxenstored
. /usr/share/xenvm/dom0-lib.sh
dom0_setup

case "$XENSTORED" in
oxenstored) oxenstored --pid-file /run/xenstored.pid ;;
xenstored | cxenstored) xenstored --pid-file /run/xenstored.pid ;;
*) setup_failed "unknown xenstored $XENSTORED" ;;
esac
wait_xenstored

T2=$(up)
xen-init-dom0 >/tmp/xen-init-dom0.log 2>&1 || { cat /tmp/xen-init-dom0.log; setup_failed "xen-init-dom0"; }
# Guest consoles are logged to /var/log/xen/console/guest-NAME.log.
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console ||
	setup_failed "xenconsoled"

T3=$(up)
say "xen toolstack ready after ${T3}s ($XENSTORED; modules+xenfs $T0-$T1, xenstored $T1-$T2, init-dom0+xenconsoled $T2-$T3)"
dom0_run_payload

# Shared steps of the dom0 /init scripts (busybox sh, PID 1), sourced from
# /usr/share/xenvm/dom0-lib.sh: tests/xenvm/dom0-init.sh (Xen 4.17) and
# tests/xen42/dom0-init42.sh (Xen 4.2) differ only in how they start the
# toolstack's daemons, between dom0_setup and dom0_run_payload.
#
# Kernel command line knobs (set by the runner):
#   xenvm.id=ID              run id, echoed in the markers so the host matches
#                            only markers of its own run
#   xenvm.xenstored=NAME     oxenstored or xenstored (the C daemon); the
#                            init's own default otherwise
#   xenvm.shell=1            start a shell on the console instead of a payload

ID=none
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

up() { cut -d' ' -f1 /proc/uptime; }

# dom0_setup mounts the kernel's file systems, reads the knobs, loads the
# Xen modules libxl needs and mounts xenfs. It sets T0 and T1 (uptimes
# before and after the modules).
dom0_setup() {
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

	say "dom0 up after $(up)s"
	hostname xenvm-dom0
	mkdir -p /run/xen /run/xenstored /run/lock /var/lib/xen /var/lib/xenstored \
		/var/log/xen/console /var/lib/xen/dump /tmp
	ip link set lo up 2>/dev/null

	T0=$(up)
	# Each module load costs about a second under a loaded TCG: load what
	# libxl needs; loop, tun, bridge, xen-netback, xen-pciback and
	# xen-scsiback are in the image for a payload to modprobe.
	for m in xenfs xen-evtchn xen-privcmd xen-gntdev xen-gntalloc xen-blkback; do
		modprobe "$m" 2>/dev/null || say "warning: modprobe $m failed"
	done
	mount -t xenfs xenfs /proc/xen || setup_failed "mount xenfs"
	grep -q control_d /proc/xen/capabilities 2>/dev/null || setup_failed "not running as Xen dom0"
	T1=$(up)
}

# wait_xenstored waits up to 30 s for the xenstored just started.
wait_xenstored() {
	i=0
	until xenstore-read -s / >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 300 ] && setup_failed "xenstored ($XENSTORED) did not answer within 30s"
		sleep 0.1
	done
}

# dom0_run_payload runs /payload/run (or, with xenvm.shell=1, a shell) and
# powers the machine off with the result marker. It never returns.
dom0_run_payload() {
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
}

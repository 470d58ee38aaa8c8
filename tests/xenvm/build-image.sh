#!/usr/bin/env bash
# build-image.sh: build the cached boot files for the Xen-in-QEMU test harness.
#
# Output (in $XENVM_CACHE/image, default <repo>/.build/xenvm/image):
#   xen.elf     Xen 4.17 hypervisor, 32-bit multiboot ELF (QEMU -kernel)
#   vmlinuz     Debian kernel (bzImage)
#   vmlinux     the same kernel uncompressed (ELF): the runner boots it as
#               dom0 when present, which saves Xen ~4 s of decompression
#   initrd.gz   dom0 initramfs: busybox, Xen userspace, libxl and its libraries,
#               qemu-system-xen (qdisk device model), /init, and /guest/* (a test
#               guest: kernel, tiny initramfs, xl configs; and the idle guest)
#   KEY         cache key (package versions + hashes of the harness scripts)
#   packages.txt the package=version list that went into the image
#
# Everything comes from Debian packages via `apt-get download` + `dpkg-deb -x`;
# nothing is installed on the host. The .deb files are kept in
# $XENVM_CACHE/debs, so a rebuild (or a build after `make clean` of the image)
# works offline.
#
# Environment:
#   XENVM_CACHE    cache folder (default <repo>/.build/xenvm)
#   XENVM_OFFLINE  1 = never touch the network or apt lists; reuse the existing
#                  image if there is one, else build from the cached .debs
#   XENVM_FORCE    1 = rebuild even if the key matches
#   XENVM_QEMU_DM  0 = leave out qemu-system-xen and its libraries (smaller image)
#   XENVM_COMPRESS dom0 initrd compression: zstd (default if the zstd tool is
#                  there; decompresses faster under TCG), gzip, or none
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${XENVM_CACHE:-$REPO/.build/xenvm}
OFFLINE=${XENVM_OFFLINE:-0}
FORCE=${XENVM_FORCE:-0}
QEMU_DM=${XENVM_QEMU_DM:-1}
if command -v zstd >/dev/null 2>&1; then COMPRESS=${XENVM_COMPRESS:-zstd}; else COMPRESS=${XENVM_COMPRESS:-gzip}; fi
XENVER=4.17

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }

for tool in apt-cache apt-get dpkg-deb depmod cpio gzip readelf as ld sha256sum find sort; do
	command -v "$tool" >/dev/null 2>&1 || die "missing host tool: $tool (run 'make xenvm-deps')"
done

# --- package list -----------------------------------------------------------
# Hypervisor, toolstack, xenstore, console daemon.
PKGS=(
	xen-hypervisor-$XENVER-amd64 xen-utils-$XENVER xen-utils-common xenstore-utils
	libxencall1 libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
	libxenhypfs1 libxenmisc$XENVER libxenstore4 libxentoolcore1 libxentoollog1
	libc6 libgcc-s1 libyajl2 libuuid1 libnl-3-200 libnl-route-3-200
	zlib1g liblzma5 libbz2-1.0 liblzo2-2 libzstd1 libncurses6 libtinfo6
	libext2fs2 libcom-err2 libblkid1
	busybox-static bash
)
# Device model for qdisk backends and HVM/PVH console/disks. Only the
# libraries qemu-system-xen really links are added (checked below with readelf).
QEMU_PKGS=(
	qemu-system-xen qemu-system-data
	libfdt1 libglib2.0-0 libjpeg62-turbo libpixman-1-0 libspice-server1 libusb-1.0-0
	libffi8 libgstreamer-plugins-base1.0-0 libgstreamer1.0-0 liblz4-1 libmount1 libopus0 liborc-0.4-0
	libpcre2-8-0 libsasl2-2 libselinux1 libssl3 libstdc++6 libudev1 libdw1 libelf1 libunwind8
)
# HVM guests: hvmloader comes with xen-utils; SeaBIOS and its VGA option ROMs
# (qemu-system-xen refuses to start an HVM device model without them).
HVM_PKGS=(seabios)
# pygrub (bootloader = "pygrub"): Debian's xen-utils ships it as a Python 3
# script with the xenfsimage module; e2fsprogs gives dom0 `mke2fs -d`, so a
# test builds a bootable ext2 disk in dom0 instead of carrying one in the image.
PYGRUB_PKGS=(
	python3-minimal python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
	libexpat1 libncursesw6 libffi8 libcrypt1 libssl3 e2fsprogs libss2
)
if [[ $QEMU_DM == 1 ]]; then
	PKGS+=("${QEMU_PKGS[@]}" "${HVM_PKGS[@]}")
fi
for p in "${PYGRUB_PKGS[@]}"; do
	[[ " ${PKGS[*]} " == *" $p "* ]] || PKGS+=("$p")
done
KERNEL_META=linux-image-amd64

IMG=$CACHE/image
DEBS=$CACHE/debs
mkdir -p "$CACHE" "$DEBS"

# Scripts whose content goes into the image: part of the cache key.
SCRIPTS=("$HERE/build-image.sh" "$HERE/dom0-init.sh" "$HERE/dom0-lib.sh" "$HERE/guest-init.sh"
	"$HERE/idle-guest.S" "$HERE/idle-guest.lds")
for s in "${SCRIPTS[@]}"; do [[ -f $s ]] || die "missing $s"; done

APT_OPTS=()
if [[ $(id -u) == 0 ]]; then
	# apt-get download as root drops to user _apt, which cannot write our cache
	# folder; downloading as root is fine for .deb files we only unpack.
	APT_OPTS+=(-o APT::Sandbox::User=root)
fi

updated=0
apt_update_once() {
	[[ $updated == 1 || $OFFLINE == 1 ]] && return 1
	log "apt-get update (package lists missing or stale)"
	apt-get update -qq >&2 || return 1
	updated=1
}

# cached_deb_versions: "package version path" of every cached .deb.
cached_deb_versions() {
	local f
	for f in "$DEBS"/*.deb; do
		[[ -e $f ]] || continue
		printf '%s %s %s\n' "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" "$f"
	done
}

# --- resolve package versions -----------------------------------------------
# One apt-cache call (each call costs ~1.5 s when apt keeps no pkgcache.bin):
# the candidate version of every package and of the kernel meta package, whose
# Depends names the kernel package. The kernel package's own version is only
# looked up when the image must be built.
declare -A VER=()
resolve_all() {
	local out p
	out=$(apt-cache show --no-all-versions "${PKGS[@]}" "$KERNEL_META" 2>/dev/null |
		awk -v meta="$KERNEL_META" '
			/^Package: /{p=$2}
			/^Version: /{if (p!="") print "V", p, $2}
			/^Depends: /{if (p==meta) print "D", p, substr($0, 10)}
			/^$/{p=""}') || true
	VER=()
	KPKG=
	while read -r kind p rest; do
		case $kind in
		V) VER[$p]=$rest ;;
		D) KPKG=$(tr ',' '\n' <<<"$rest" | sed 's/(.*//; s/ //g' | grep '^linux-image-[0-9]' | head -n1) || true ;;
		esac
	done <<<"$out"
	[[ -n $KPKG ]] || { log "cannot resolve the kernel package from $KERNEL_META"; return 1; }
	for p in "${PKGS[@]}" "$KERNEL_META"; do
		[[ -n ${VER[$p]:-} ]] || { log "cannot resolve package $p"; return 1; }
	done
}

KPKG=
resolved=0
if [[ $OFFLINE != 1 ]]; then
	if resolve_all || { apt_update_once && resolve_all; }; then
		resolved=1
	fi
fi
if [[ $resolved != 1 ]]; then
	# Offline (or apt cannot tell): use what is cached.
	if [[ -f $IMG/KEY && -f $IMG/initrd.gz && -f $IMG/xen.elf && -f $IMG/vmlinuz && $FORCE != 1 ]]; then
		log "offline / apt unavailable: using existing image $IMG"
		exit 0
	fi
	log "offline / apt unavailable: building from cached .debs in $DEBS"
	VER=()
	while read -r p v f; do
		# newest cached version of each package wins
		if [[ -z ${VER[$p]:-} ]] || dpkg --compare-versions "$v" gt "${VER[$p]}"; then VER[$p]=$v; fi
	done < <(cached_deb_versions)
	KPKG=$(printf '%s\n' "${!VER[@]}" | grep '^linux-image-[0-9]' | sort -V | tail -n1) || true
	[[ -n $KPKG ]] || die "no cached kernel package; run once with network access"
	for p in "${PKGS[@]}"; do
		[[ -n ${VER[$p]:-} ]] || die "package $p is not cached; run once with network access"
	done
	VER[$KERNEL_META]=offline
fi

# --- cache key ----------------------------------------------------------------
KEY=$( {
	for p in "${PKGS[@]}" "$KERNEL_META"; do printf '%s=%s\n' "$p" "${VER[$p]}"; done | sort -u
	printf 'kernel=%s qemu_dm=%s compress=%s\n' "$KPKG" "$QEMU_DM" "$COMPRESS"
	sha256sum "${SCRIPTS[@]}" | awk '{print $1}'
} | sha256sum | awk '{print $1}')

if [[ $FORCE != 1 && -f $IMG/KEY && $(cat "$IMG/KEY") == "$KEY" && -f $IMG/initrd.gz && -f $IMG/xen.elf && -f $IMG/vmlinuz ]]; then
	log "image up to date ($IMG, key ${KEY:0:12})"
	exit 0
fi
if [[ -z ${VER[$KPKG]:-} ]]; then
	VER[$KPKG]=$(apt-cache show --no-all-versions "$KPKG" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
	[[ -n ${VER[$KPKG]} ]] || die "cannot resolve the version of $KPKG"
fi
PKGLIST=$(for p in "${PKGS[@]}" "$KPKG"; do printf '%s=%s\n' "$p" "${VER[$p]}"; done | sort -u)
log "building image (key ${KEY:0:12})"
t0=$SECONDS

# --- download ---------------------------------------------------------------------
# Cached debs are named NAME_VERSION.deb (our own naming, no epoch escaping issues).
debfile() { printf '%s/%s_%s.deb' "$DEBS" "$1" "${2//:/%3a}"; }
missing=()
for p in "${PKGS[@]}" "$KPKG"; do
	[[ -f $(debfile "$p" "${VER[$p]}") ]] || missing+=("$p=${VER[$p]}")
done
if ((${#missing[@]})); then
	[[ $OFFLINE == 1 ]] && die "offline, but not cached: ${missing[*]}"
	log "downloading ${#missing[@]} packages"
	dl=$(mktemp -d "$CACHE/dl.XXXXXX")
	trap 'rm -rf "$dl"' EXIT
	if ! (cd "$dl" && apt-get download -q "${APT_OPTS[@]}" "${missing[@]}" >&2); then
		apt_update_once || die "apt-get download failed"
		(cd "$dl" && apt-get download -q "${APT_OPTS[@]}" "${missing[@]}" >&2) || die "apt-get download failed"
	fi
	for f in "$dl"/*.deb; do
		p=$(dpkg-deb -f "$f" Package) v=$(dpkg-deb -f "$f" Version)
		mv "$f" "$(debfile "$p" "$v")"
	done
	rm -rf "$dl"
	trap - EXIT
fi

# --- stage the dom0 root ------------------------------------------------------------
WORK=$CACHE/work
rm -rf "$WORK"
mkdir -p "$WORK/root" "$WORK/kpkg" "$WORK/guest"
ROOT=$WORK/root
trap 'rm -rf "$WORK"' EXIT

for p in "${PKGS[@]}"; do
	dpkg-deb -x "$(debfile "$p" "${VER[$p]}")" "$ROOT"
done
dpkg-deb -x "$(debfile "$KPKG" "${VER[$KPKG]}")" "$WORK/kpkg"

KVER=$(ls "$WORK/kpkg/lib/modules")
[[ $(wc -w <<<"$KVER") == 1 ]] || die "expected one kernel version in $KPKG, got: $KVER"

mkdir -p "$WORK/out"
zcat "$ROOT/boot/xen-$XENVER-amd64.gz" >"$WORK/out/xen.elf"
cp "$WORK/kpkg/boot/vmlinuz-$KVER" "$WORK/out/vmlinuz"

# Kernel modules: only what dom0 needs (Xen drivers and backends, loop, bridge,
# tun), with their dependencies.
WANT_MODS=(xenfs xen-evtchn xen-privcmd xen-gntdev xen-gntalloc xen-blkback xen-netback
	xen-pciback xen-scsiback loop bridge tun)
depmod -b "$WORK/kpkg" "$KVER"
MODDIR=lib/modules/$KVER
declare -A keep=()
modpath() { # module name -> relative path from modules.dep
	local n=${1//-/[-_]}
	grep -E "(^|/)${n}\.ko(\.[gx]z|\.zst)?:" "$WORK/kpkg/$MODDIR/modules.dep" | head -n1 | cut -d: -f1
}
for m in "${WANT_MODS[@]}"; do
	rel=$(modpath "$m")
	[[ -n $rel ]] || die "module $m not found in $KPKG"
	keep[$rel]=1
	for d in $(grep -E "^${rel}:" "$WORK/kpkg/$MODDIR/modules.dep" | cut -d: -f2-); do keep[$d]=1; done
done
mkdir -p "$ROOT/$MODDIR"
for rel in "${!keep[@]}"; do
	mkdir -p "$ROOT/$MODDIR/$(dirname "$rel")"
	cp "$WORK/kpkg/$MODDIR/$rel" "$ROOT/$MODDIR/$rel"
done
cp "$WORK/kpkg/$MODDIR"/modules.{order,builtin,builtin.modinfo} "$ROOT/$MODDIR/" 2>/dev/null || true
depmod -b "$ROOT" "$KVER"

# Drop what a test dom0 never uses.
rm -rf "$ROOT"/boot "$ROOT"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,bash-completion,gtk-doc,python3,X11,alsa,sounds,glib-2.0,gstreamer-1.0,zsh,fish,menu,applications,icons,pixmaps,mime} \
	"$ROOT"/usr/lib/x86_64-linux-gnu/gstreamer1.0 "$ROOT"/usr/lib/x86_64-linux-gnu/gconv \
	"$ROOT"/usr/lib/x86_64-linux-gnu/gio "$ROOT"/usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0 \
	"$ROOT"/usr/lib/x86_64-linux-gnu/glib-2.0 "$ROOT"/usr/lib/x86_64-linux-gnu/*.a \
	"$ROOT"/usr/lib/x86_64-linux-gnu/alsa-lib "$ROOT"/usr/lib/x86_64-linux-gnu/pulseaudio \
	"$ROOT"/usr/lib/x86_64-linux-gnu/sasl2 \
	"$ROOT"/etc/init.d "$ROOT"/etc/default "$ROOT"/usr/lib/systemd "$ROOT"/lib/systemd "$ROOT"/lib/udev
if [[ -d $ROOT/usr/share/qemu ]]; then
	# qemu-system-xen aborts without keymaps; an HVM device model also needs
	# the VGA option ROMs, which Debian ships in seabios.
	find "$ROOT/usr/share/qemu" -mindepth 1 -maxdepth 1 ! -name keymaps -exec rm -rf {} +
	if [[ -d $ROOT/usr/share/seabios ]]; then
		for rom in vgabios-cirrus.bin vgabios-stdvga.bin; do
			ln -sfn ../seabios/$rom "$ROOT/usr/share/qemu/$rom"
		done
		find "$ROOT/usr/share/seabios" -mindepth 1 -maxdepth 1 ! -name bios-256k.bin \
			! -name vgabios-cirrus.bin ! -name vgabios-stdvga.bin -exec rm -rf {} +
	fi
fi
# Python for pygrub only: drop what it never imports, and the extension
# modules whose libraries the image does not carry.
PYLIB=$ROOT/usr/lib/python3.11
if [[ -d $PYLIB ]]; then
	rm -rf "$PYLIB"/{test,idlelib,tkinter,turtledemo,lib2to3,ensurepip,pydoc_data,distutils,unittest,asyncio,email,http,xmlrpc,sqlite3,dbm,wsgiref,venv,multiprocessing,concurrent,html,urllib,json,xml} \
		"$PYLIB"/config-3.11-* "$ROOT"/usr/lib/python3/dist-packages
	for m in _sqlite3 _dbm _gdbm readline _decimal _tkinter nis; do
		rm -f "$PYLIB"/lib-dynload/$m.cpython-311-*.so
	done
fi
# Binaries from the library packages are not needed, only their libraries.
rm -rf "$ROOT"/usr/bin/{gst-*,gdbus*,gio*,glib-*,gobject-*,gresource,gsettings,gtester*,sdl2-config,jack*,pa*,pulseaudio,pactl,sndfile-*,dbus-*,c_rehash,openssl} \
	"$ROOT"/usr/libexec/gstreamer-1.0 "$ROOT"/usr/lib/x86_64-linux-gnu/libjack* 2>/dev/null || true

# Busybox applets for every command that no package provides.
"$ROOT/bin/busybox" --list-full | while read -r app; do
	[[ -e $ROOT/$app || -L $ROOT/$app ]] && continue
	mkdir -p "$ROOT/$(dirname "$app")"
	ln -s /bin/busybox "$ROOT/$app"
done

# The image's own files.
install -m 0755 "$HERE/dom0-init.sh" "$ROOT/init"
install -D -m 0644 "$HERE/dom0-lib.sh" "$ROOT/usr/share/xenvm/dom0-lib.sh"
mkdir -p "$ROOT"/{proc,sys,dev,run,tmp,root,payload,var/lib/xen,var/log/xen,var/lock,etc/xen}
ln -sfn /run "$ROOT/var/run"
chmod 1777 "$ROOT/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
printf '127.0.0.1 localhost\n' >"$ROOT/etc/hosts"
printf 'xenvm-dom0\n' >"$ROOT/etc/hostname"
printf '%s\n' "$KVER" >"$ROOT/etc/xenvm-kernel"
printf '%s\n' "$PKGLIST" >"$ROOT/etc/xenvm-packages"
if [[ $(id -u) == 0 ]]; then
	mknod -m 600 "$ROOT/dev/console" c 5 1
fi

# ld.so cache for the staged libraries (the search dirs come from the staged
# /etc/ld.so.conf.d of libc6).
if command -v ldconfig >/dev/null 2>&1; then
	ldconfig -r "$ROOT" 2>/dev/null || log "warning: ldconfig -r failed; relying on default search paths"
fi

# --- test guest ---------------------------------------------------------------------
G=$WORK/guest
mkdir -p "$G"/{bin,sbin,proc,sys,dev,tmp,etc}
cp "$ROOT/bin/busybox" "$G/bin/busybox"
for app in sh mount umount poweroff reboot halt sleep cat echo grep sed ls ps kill uname dmesg insmod; do
	ln -sf busybox "$G/bin/$app"
done
ln -sf ../bin/busybox "$G/sbin/poweroff"
ln -sf ../bin/busybox "$G/sbin/reboot"
ln -sf ../bin/busybox "$G/sbin/halt"
install -m 0755 "$HERE/guest-init.sh" "$G/init"
# Xen's watchdog driver and the watchdog core it needs (guest_watchdog=N).
mkdir -p "$G/lib/modules"
for m in watchdog xen_wdt; do
	rel=$(modpath "$m")
	[[ -n $rel ]] || die "module $m not found in $KPKG"
	cp "$WORK/kpkg/$MODDIR/$rel" "$G/lib/modules/$m.ko"
done
if [[ $(id -u) == 0 ]]; then mknod -m 600 "$G/dev/console" c 5 1; fi
mkdir -p "$ROOT/guest"
(cd "$G" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) | gzip -9 >"$ROOT/guest/initrd.gz"
cp "$WORK/out/vmlinuz" "$ROOT/guest/vmlinuz"
# The same kernel, uncompressed: libxenguest would otherwise xz-decompress the
# bzImage inside dom0 on every guest create, which under TCG costs tens of
# seconds (measured: 54-137 s create with vmlinuz, 15-54 s with vmlinux under load).
GUEST_KERNEL=/guest/vmlinuz
xzoff=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$WORK/out/vmlinuz" | head -n1 | cut -d: -f1) || true
if [[ -n $xzoff ]] && command -v xz >/dev/null 2>&1; then
	tail -c +$((xzoff + 1)) "$WORK/out/vmlinuz" | xz -dc --single-stream >"$ROOT/guest/vmlinux" 2>/dev/null || true
	if [[ $(head -c4 "$ROOT/guest/vmlinux" 2>/dev/null) == $'\x7fELF' ]]; then
		GUEST_KERNEL=/guest/vmlinux
		# Also the dom0 kernel: Xen then skips its own xz decompression of
		# the bzImage (about 4 s of every boot under TCG).
		cp "$ROOT/guest/vmlinux" "$WORK/out/vmlinux"
	else
		rm -f "$ROOT/guest/vmlinux"
		log "warning: could not extract an uncompressed guest kernel; guests use vmlinuz"
	fi
else
	log "warning: no xz payload found in vmlinuz (or no xz tool); guests use vmlinuz"
fi
cat >"$ROOT/guest/guest.cfg" <<EOF
# Test guest: the dom0 kernel as a PV guest with a tiny busybox initramfs.
# The guest prints "XENVM-GUEST up" on its console, then waits; it powers off
# when asked (xl shutdown / libxl_domain_shutdown) or after guest_sleep=N seconds.
# /guest/vmlinux is /guest/vmlinuz uncompressed (much faster to load).
name = "testguest"
type = "pv"
kernel = "$GUEST_KERNEL"
ramdisk = "/guest/initrd.gz"
memory = 128
vcpus = 1
extra = "console=hvc0 guest_sleep=forever"
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
EOF
sed -e 's/^name = .*/name = "testguest-pvh"/' -e 's/^type = .*/type = "pvh"/' \
	"$ROOT/guest/guest.cfg" >"$ROOT/guest/guest-pvh.cfg"

# The idle guest (idle-guest.S): two pages that block in Xen, for tests that
# only create and destroy (the soak). 16 MiB is what the builder needs for
# its page tables, p2m and rings with room to spare.
as "$HERE/idle-guest.S" -o "$WORK/idle-guest.o"
ld -T "$HERE/idle-guest.lds" --build-id=none -z max-page-size=4096 -o "$ROOT/guest/idle" "$WORK/idle-guest.o"
cat >"$ROOT/guest/idle.cfg" <<EOF
# The idle guest: no Linux, no console output; it blocks until destroyed.
name = "idleguest"
type = "pv"
kernel = "/guest/idle"
memory = 16
vcpus = 1
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
EOF

# --- check that every ELF's NEEDED libraries are in the image -----------------------
log "checking shared library dependencies"
# Xen's private library folder too: the xenfsimage plugins (pygrub) need
# libxenfsimage, which the process has already loaded by RUNPATH when it
# dlopens them.
libdirs=(/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /lib /usr/lib /usr/lib/xen-$XENVER/lib/x86_64-linux-gnu)
declare -A have=()
for d in "${libdirs[@]}"; do
	[[ -d $ROOT$d ]] || continue
	for f in "$ROOT$d"/*; do have[${f##*/}]=1; done
done
bad=0
while IFS= read -r -d '' f; do
	head -c4 "$f" 2>/dev/null | grep -q $'^\x7fELF' || continue
	dyn=$(readelf -d "$f" 2>/dev/null) || continue
	interp=$(readelf -l "$f" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	if [[ -n $interp && ! -e $ROOT$interp ]]; then
		log "missing interpreter $interp for ${f#$ROOT}"
		bad=1
	fi
	rpaths=$(sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p' <<<"$dyn" | tr ':' ' ')
	for lib in $(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$dyn"); do
		[[ -n ${have[$lib]:-} ]] && continue
		found=0
		for rp in $rpaths; do
			rp=${rp//\$ORIGIN/$(dirname "${f#$ROOT}")}
			[[ -e $ROOT$rp/$lib ]] && { found=1; break; }
		done
		[[ $found == 1 ]] && continue
		log "missing $lib (needed by ${f#$ROOT})"
		bad=1
	done
done < <(find "$ROOT" -type f \( -perm -u+x -o -name '*.so*' \) -print0)
[[ $bad == 0 ]] || die "the image lacks shared libraries (see above): add their packages to PKGS"

# --- pack -------------------------------------------------------------------------------
log "packing initrd"
case "$COMPRESS" in
zstd) compress=(zstd -q -T0 -12 -c) ;;
gzip) compress=(gzip -6 -c) ;;
none) compress=(cat) ;;
*) die "XENVM_COMPRESS must be zstd, gzip or none" ;;
esac
# (The file is named initrd.gz whatever the compression; the kernel detects it.)
(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) | "${compress[@]}" >"$WORK/out/initrd.gz"
# Pad to 512 bytes so a cpio archive appended by the runner starts aligned.
sz=$(stat -c %s "$WORK/out/initrd.gz")
pad=$(( (512 - sz % 512) % 512 ))
((pad == 0)) || head -c "$pad" /dev/zero >>"$WORK/out/initrd.gz"
printf '%s\n' "$PKGLIST" >"$WORK/out/packages.txt"
printf '%s\n' "$KVER" >"$WORK/out/kernel-version"
printf '%s\n' "$KEY" >"$WORK/out/KEY"

rm -rf "$IMG.old"
[[ -d $IMG ]] && mv "$IMG" "$IMG.old"
mv "$WORK/out" "$IMG"
rm -rf "$IMG.old" "$WORK"
trap - EXIT

# Drop cached .debs that are no longer referenced (old versions).
for f in "$DEBS"/*.deb; do
	b=${f##*/}
	grep -qxF "${b%.deb}" < <(for p in "${PKGS[@]}" "$KPKG"; do printf '%s_%s\n' "$p" "${VER[$p]//:/%3a}"; done) || rm -f "$f"
done

log "done in $((SECONDS - t0))s: $(du -sh "$IMG/initrd.gz" | cut -f1) initrd, kernel $KVER"

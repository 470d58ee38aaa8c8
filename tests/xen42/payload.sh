#!/bin/sh
# Runs inside the 4.2 dom0 (tests/xen42/run): the mode's checks, then the
# integration suite (the tests 4.2 can serve: $XEN42_RUN).
echo "== xen42 mode $XEN42_MODE: $(xl info | grep -E '^xen_(major|minor|extra)' | tr -s ' ' | tr '\n' ' ')"
rc=0
case "$XEN42_MODE" in
4.2.1-pristine)
	# goxl's default on unpatched 4.2.1 is to refuse (ErrUnpatched42).
	out=$(goxl list 2>&1); r=$?
	echo "$out"
	if [ $r -ne 0 ] && echo "$out" | grep -q "stale fd/timeout callback races"; then
		echo "XEN42-CHECK ok: default refusal (ErrUnpatched42) on unpatched 4.2.1"
	else
		echo "XEN42-CHECK FAIL: goxl did not refuse unpatched 4.2.1 (rc=$r)"; rc=1
	fi
	export GOXL_LIBXL_SAFE_MODE=1
	goxl list && echo "XEN42-CHECK ok: Xen42Serialised (GOXL_LIBXL_SAFE_MODE=1) lists domains" ||
		{ echo "XEN42-CHECK FAIL: serialised goxl list"; rc=1; }
	;;
*)
	goxl list && echo "XEN42-CHECK ok: goxl list with hooks (no override)" ||
		{ echo "XEN42-CHECK FAIL: goxl list"; rc=1; }
	;;
esac
/payload/integration.test -test.v -test.count=1 -test.timeout=2000s -test.run "$XEN42_RUN" || rc=1
exit $rc

# The idle guest: a PV kernel of two pages that blocks in SCHEDOP_poll
# forever. The soak creates and destroys it; loading the 66 MB Linux test
# kernel was most of a create under TCG, and a soak measures goxl and
# libxl, not the guest. Built by build-image.sh with as and ld (binutils).

# One ELF note of Xen's (libelf finds the PT_NOTE segment); its value is a
# string or an address.
.macro xen_note_begin type
	.pushsection .note.Xen, "a", @note
	.p2align 2
	.long 4, 2f - 1f, \type
	.asciz "Xen"
	.p2align 2
1:
.endm
.macro xen_note_end
2:	.p2align 2
	.popsection
.endm
.macro xen_note_string type, value
	xen_note_begin \type
	.asciz "\value"
	xen_note_end
.endm
.macro xen_note_address type, value
	xen_note_begin \type
	.quad \value
	xen_note_end
.endm

	xen_note_string 6, goxl-idle          # XEN_ELFNOTE_GUEST_OS
	xen_note_string 5, xen-3.0            # XEN_ELFNOTE_XEN_VERSION
	xen_note_string 8, generic            # XEN_ELFNOTE_LOADER: not "linux"
	xen_note_address 2, hypercall_page    # XEN_ELFNOTE_HYPERCALL_PAGE

	.text
	.globl _start
_start:
	# sched_op(SCHEDOP_poll, {no ports, no timeout}): the vCPU blocks
	# until an event, and events stay masked, so it wakes only to poll
	# again. Destroy finds it blocked, using no CPU.
	lea poll_args(%rip), %rsi
	mov $3, %edi                        # SCHEDOP_poll
	call hypercall_page + 29 * 32       # __HYPERVISOR_sched_op
	jmp _start

	.p2align 3
poll_args:
	.quad 0, 0, 0                       # ports, nr_ports, timeout

	# Xen writes its hypercall stubs here (a page of the image).
	.p2align 12
hypercall_page:
	.fill 4096, 1, 0

// Command goxl is an xl-like front end to goxl's driver: it manages Xen
// domains from dom0 through libxl, on goxl's event loop.
//
// Usage:
//
//	goxl [--json] [-v] <verb> [options] [args]
//	goxl help [verb]
//
// `goxl help` lists the verbs, `goxl help VERB` or `goxl VERB -h` gives a
// verb's options (on stdout, exit 0). Options are parsed as xl parses them:
// before or after the positional arguments, combined short flags (-pq),
// "--" ends the options. A <dom> is a domid, a name or a UUID. Progress
// lines go to stderr.
//
// # Verbs
//
//	list [-l] [-v] [dom...]     domains, as xl list; -l: xl's JSON [{domid, config}]
//	info [dom]                  the host, as xl info; with a domain: that domain
//	create [-pqceFn] [-f cfg] [cfg] [key=value...]
//	destroy <dom>
//	shutdown [-awF] <dom|-a>    reboot [-awF] <dom|-a>
//	pause <dom>                 unpause <dom>
//	save [-cp] <dom> <file>     restore [-pe] [cfg] <file>
//	console [-t pv|serial] [-n num] <dom>   attaches; Ctrl-] leaves
//	events                      lifecycle events until SIGINT
//	domid <name>  domname <domid>  uptime [dom...]
//	mem-set <dom> <mem>  vcpu-set <dom> <count>  vcpu-list [dom...]
//	version
//	daemon                      see daemon.go
//
// All verbs reach Xen through a Backend (backend.go): through the goxl
// daemon when its socket answers, else in this process (localBackend).
//
// # Two builds: goxl and goxl-libxl
//
// Built without cgo, goxl is the daemon's client: it links no C, and in
// dom0 under emulation it starts in about a third of the time of the cgo
// build (handoff.go has the figures). An xl config it cannot parse goes
// to the daemon as text (create.go: loadConfig), and the daemon parses
// it. Whatever needs libxl in this process (no daemon answers, a config
// to parse here for create -n, `goxl daemon` and its monitors) it hands
// by exec to the cgo build,
// installed beside it as goxl-libxl (or $GOXL_LIBXL_BIN): same pid,
// arguments, environment and descriptors. A goxl built with cgo does
// everything itself. `make xen`, `make demo` and `make bench` install both.
//
// # --json
//
// With --json (before or after the verb) stdout carries exactly one JSON
// document per invocation: {"ok":true,"result":R} where R is the verb's
// result (its shape is given by `goxl help VERB`), or, on any error,
// {"ok":false,"error":{"code":C,"kind":K,"message":M}} with the exit code
// C and its kind (usage, failed, not-found, not-xen, config, exists,
// permission, protocol, daemon-lost, interrupted). The plain error message also goes to stderr. `events
// --json` is the exception: one event object per line, and an error
// object as its last line if the stream fails.
//
// # Exit codes
//
// 0 ok; 1 the operation failed; 2 usage error; 3 domain not found; 4 not
// on a Xen dom0 (or libxl unavailable); 5 config error; 6 a domain with
// that name exists; 7 permission denied (the daemon's API is root only;
// the CLI never falls back to in-process mode then); 8 protocol error
// (the daemon speaks another protocol version, or answered something
// that is not the protocol); 9 the daemon went away before answering
// (killed or stopped mid-request: a create it ran is destroyed when it
// starts again) or is stopping; 130 interrupted (SIGINT).
//
// # Ownership, threads and locks
//
//   - A verb runs on main's goroutine and owns the Backend it opens; it
//     closes it before returning. Domains outlive the process.
//   - shutdown -a and reboot -a call the Backend from one goroutine per
//     domain: Backend implementations are safe for concurrent use. No lock
//     of the CLI's is held across a Backend call.
//   - console runs one poll loop on the verb's goroutine (no goroutine is
//     left blocked on stdin); it owns the pty fd it opened and restores
//     both terminals' settings on every return path.
//   - SIGINT/SIGTERM cancel the verb's context (exit 130 when that ended
//     the verb); in the console's raw mode the terminal sends no SIGINT,
//     Ctrl-] leaves instead.
package main

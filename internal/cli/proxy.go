package cli

import (
	"context"
	"os"
	"runtime"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/gkessh/gkessh/tunnel"
)

// proxyOptions are the flags and arguments of `gkessh proxy NODE [PORT]`.
type proxyOptions struct {
	globalOptions
	keyOptions
	Node               string
	Port               int
	NoEnsureKey        bool
	PropagationTimeout time.Duration
}

func proxyCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "proxy",
		Usage: "connect stdin and stdout to a node's port through IAP, for ssh's ProxyCommand",
		UsageText: "gkessh proxy [flags] NODE [PORT]\n\n" +
			"   PORT defaults to 22. In ~/.ssh/config:\n" +
			"     Host gke-*\n" +
			"       ProxyCommand gkessh proxy --user %r %h %p\n\n" +
			"   For port 22 the proxy first makes sure your key is in metadata and installed on the\n" +
			"   node (as gkessh NODE does), so ssh's one try with it succeeds. Once the node has\n" +
			"   taken the key, later connections skip this with no API call until the key nears\n" +
			"   expiry. --no-ensure-key leaves keys alone.",
		Flags: append(append(googleFlags(), keyFlags()...), propagationFlag,
			&ucli.BoolFlag{Name: "no-ensure-key", Usage: "do not put the key into metadata or wait for it; just carry the bytes"},
			// So that `gcloud compute start-iap-tunnel %h %p --listen-on-stdin`
			// in an ssh config becomes gkessh by changing the command alone.
			&ucli.BoolFlag{Name: "listen-on-stdin", Usage: "the only way proxy works; accepted for gcloud start-iap-tunnel command lines"}),
		Action: func(c *ucli.Context) error {
			k, err := keyFlagValues(c)
			if err != nil {
				return err
			}
			o := proxyOptions{globalOptions: globals(c), keyOptions: k, NoEnsureKey: c.Bool("no-ensure-key"), PropagationTimeout: c.Duration("propagation-timeout")}
			if o.Node, o.Port, err = nodePort(c.Args().Slice(), 22, "gkessh proxy NODE [PORT]"); err != nil {
				return err
			}
			return runProxy(c.Context, o, d, stdio)
		},
	}
}

// runProxy carries stdin and stdout through a tunnel until both ends are
// done. Stdout gets nothing but the node's bytes. A tunnel that cannot be
// opened or breaks exits 255 with one line on stderr, as ssh does.
func runProxy(ctx context.Context, o proxyOptions, d *deps, stdio Stdio) error {
	r, dial, err := d.nodeDialer(ctx, o.globalOptions, o.Node, o.Port)
	if err != nil {
		return exitError{code: 255, err: err}
	}
	next, release, err := openFirst(ctx, dial)
	if err != nil {
		return exitError{code: 255, err: err}
	}
	defer release()
	if o.Port == 22 && !o.NoEnsureKey {
		if err := stageKey(ctx, o, d, r, dial, stdio); err != nil {
			return exitError{code: 255, err: err}
		}
	}
	conn, err := next(ctx)
	if err != nil {
		return exitError{code: 255, err: err}
	}
	defer conn.Close()
	if os.Getenv("GOMAXPROCS") == "" {
		// One stream needs one thread running Go at a time; more make the
		// scheduler spin between hand-offs, and on a small machine that CPU
		// is taken from ssh itself (measured: a third of the proxy's CPU
		// time on downloads).
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	in, out := stdio.In, stdio.Out
	if f, ok := in.(*os.File); ok {
		if twin, restore := pollable(f, pipeSize); twin != nil {
			defer restore()
			in = twin
		}
	}
	if f, ok := out.(*os.File); ok {
		if twin, restore := pollable(f, 0); twin != nil {
			defer restore()
			out = twin
		}
	}
	if err := tunnel.Pipe(ctx, conn, in, out); err != nil && ctx.Err() == nil {
		return exitError{code: 255, err: err}
	}
	return nil
}

// pipeSize is the buffer asked for on the pipe from ssh, Linux's default
// limit for unprivileged processes: fewer, larger reads of what ssh sends.
// The pipe to ssh keeps the default 64 KiB. Measured with a 1 MiB one: ssh
// fell behind at the start of a download (the pipe full for the first
// 100 ms, 1 MiB in after 95-128 ms against 8 ms through nc), used 60% more
// CPU on 32 MiB, and downloads ran at 115-118 MB/s against 166-179 with
// the default pipe.
const pipeSize = 1 << 20

// pollable returns a non-blocking twin of f when f is a pipe or socket in
// blocking mode (as ssh gives a ProxyCommand), so that waiting on it parks a
// goroutine in Go's network poller instead of a thread in the kernel: at
// tens of thousands of reads and writes a second, thread switches
// otherwise cost more than the copying. The twin is a duplicate descriptor;
// restore closes it and puts back blocking mode, which duplicates share.
// Terminals and files are left alone, since their mode is shared with
// whoever else has them open. A pipe's buffer is set to size unless size
// is 0. It returns nil when there is nothing to do.
func pollable(f *os.File, size int) (twin *os.File, restore func()) {
	st, err := f.Stat()
	if err != nil || st.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return nil, nil
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, nil
	}
	dup := -1
	ctlErr := sc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK != 0 {
			return // already non-blocking, so Go polls it; or unknown
		}
		d, err := unix.Dup(int(fd))
		if err != nil {
			return
		}
		if err := unix.SetNonblock(d, true); err != nil {
			unix.Close(d)
			return
		}
		if size > 0 {
			unix.FcntlInt(uintptr(d), unix.F_SETPIPE_SZ, size) // best effort
		}
		dup = d
	})
	if ctlErr != nil || dup < 0 {
		return nil, nil
	}
	twin = os.NewFile(uintptr(dup), f.Name())
	return twin, func() {
		if sc, err := twin.SyscallConn(); err == nil {
			sc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), false) })
		}
		twin.Close()
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"postgate/gateway"
	"postgate/queue"
)

// queueCmd's list and show read the queue log read-only, so they work
// while the daemon runs (and when it does not); the commands that change
// the queue go through the daemon (queueAdmin).
func queueCmd(args []string) int {
	fs := flag.NewFlagSet("queue", flag.ExitOnError)
	dir := configFlag(fs)
	fs.Parse(args)
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cfg, err := loadConfig(*dir, false)
	if err != nil {
		printError("", err)
		return 1
	}
	qdir := cfg.Get("queue_directory")
	if sub := rest[0]; sub == "flush" || slices.Contains(queue.AdminOps, sub) {
		return queueAdmin(qdir, sub, rest[1:])
	}
	snap, err := queue.OpenReadOnly(qdir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: queue_directory %s: %v\n", qdir, err)
		return 1
	}
	switch sub, subArgs := rest[0], rest[1:]; sub {
	case "list":
		sfs := flag.NewFlagSet("queue list", flag.ExitOnError)
		asJSON := sfs.Bool("json", false, "JSON lines, as postqueue -j")
		sfs.Parse(subArgs)
		// The JSON form stays one message a line, as postqueue -j, so the
		// damage summary (bytes that named no message) is only in the text
		// form; JSON readers count the corrupt queue's lines.
		if *asJSON {
			err = queue.WriteJSON(os.Stdout, snap.List())
		} else if err = queue.WriteMailq(os.Stdout, snap.List(), cfg.Bool("enable_long_queue_ids")); err == nil {
			err = queue.WriteDamage(os.Stdout, snap.Damage())
		}
	case "show":
		sfs := flag.NewFlagSet("queue show", flag.ExitOnError)
		raw := sfs.Bool("raw", false, "print only the stored message bytes")
		sfs.Parse(subArgs)
		if sfs.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "usage: postgate queue show [--raw] ID")
			return 2
		}
		err = showMessage(snap, sfs.Arg(0), *raw)
	case "shape":
		var code int
		if code, err = queueShape(snap, subArgs); code != 0 {
			return code
		}
	default:
		fmt.Fprintf(os.Stderr, "postgate: unknown queue command %q\n%s", sub, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: %v\n", err)
		return 1
	}
	return 0
}

// queueAdmin runs hold, release, delete, requeue, expire (postsuper -h,
// -H, -d, -r, -e) and flush (postqueue -f, -s domain). The running daemon
// applies them, through its control socket; when none runs, the command
// opens the queue itself (its lock keeps a daemon from starting
// meanwhile). IDs come as arguments, "ALL", or "-" for one a line on
// standard input. postsuper's summary goes to standard error.
func queueAdmin(qdir, op string, args []string) int {
	req := gateway.ControlRequest{Op: op}
	if op == "flush" {
		if len(args) > 1 {
			fmt.Fprintln(os.Stderr, "usage: postgate queue flush [DOMAIN]")
			return 2
		}
		if len(args) == 1 {
			req.Domain = args[0]
		}
	} else {
		for _, a := range args {
			if a != "-" {
				req.IDs = append(req.IDs, a)
				continue
			}
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				if id := strings.TrimSpace(sc.Text()); id != "" {
					req.IDs = append(req.IDs, id)
				}
			}
		}
		if len(req.IDs) == 0 {
			fmt.Fprintf(os.Stderr, "usage: postgate queue %s ID...|ALL|-\n", op)
			return 2
		}
	}
	reply, err := controlDaemon(qdir, req)
	if errors.Is(err, errNoDaemon) {
		reply, err = controlOffline(qdir, req)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: %v\n", err)
		return 1
	}
	for _, e := range reply.Errors {
		fmt.Fprintf(os.Stderr, "postgate: %s\n", e)
	}
	if op != "flush" {
		fmt.Fprintf(os.Stderr, "postgate: %s\n", gateway.ControlSummary(op, reply.Changed))
	}
	if len(reply.Errors) > 0 {
		return 1
	}
	return 0
}

var errNoDaemon = errors.New("no gateway runs on this queue")

// controlDaemon sends req to the running daemon.
func controlDaemon(qdir string, req gateway.ControlRequest) (gateway.ControlReply, error) {
	var reply gateway.ControlReply
	path := filepath.Join(qdir, gateway.ControlSocket)
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return reply, errNoDaemon
	}
	if err != nil {
		return reply, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return reply, fmt.Errorf("control socket %s: %w", path, err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &reply)
	}
	if err != nil {
		return reply, fmt.Errorf("control socket %s: no answer from the gateway: %w", path, err)
	}
	return reply, nil
}

// controlOffline applies req to the queue directly, no daemon running.
func controlOffline(qdir string, req gateway.ControlRequest) (gateway.ControlReply, error) {
	if req.Op == "flush" {
		return gateway.ControlReply{}, fmt.Errorf("%w: nothing delivers to flush", errNoDaemon)
	}
	s, err := queue.Open(qdir, queue.Options{})
	if err != nil {
		return gateway.ControlReply{}, fmt.Errorf("queue_directory %s: %w", qdir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reply := gateway.ApplyControl(ctx, s, req)
	if err := s.Close(); err != nil {
		return reply, fmt.Errorf("queue_directory %s: %w", qdir, err)
	}
	return reply, nil
}

// queueShape prints qshape's view of the queue: its switches, and queue
// names as arguments (incoming and maildrop are accepted and empty:
// postgate has neither, a message is active from the moment it is queued).
func queueShape(snap *queue.Snapshot, args []string) (int, error) {
	o := queue.DefaultShape(time.Now())
	fs := flag.NewFlagSet("queue shape", flag.ExitOnError)
	fs.BoolVar(&o.Senders, "s", false, "count sender domains instead of recipient domains")
	fs.BoolVar(&o.Parents, "p", false, "also count parent domains")
	fs.IntVar(&o.MinSub, "m", o.MinSub, "show a parent domain with at least this many subdomains")
	fs.BoolVar(&o.Linear, "l", false, "linear age buckets")
	fs.IntVar(&o.Buckets, "b", o.Buckets, "number of age buckets")
	fs.Float64Var(&o.Tick, "t", o.Tick, "bucket width in minutes")
	fs.IntVar(&o.Width, "w", o.Width, "line width")
	fs.Parse(args)
	if fs.NArg() > 0 {
		o.Queues = nil
		for _, name := range fs.Args() {
			switch name {
			case "incoming", "maildrop":
			case "active":
				o.Queues = append(o.Queues, queue.Active)
			case "deferred":
				o.Queues = append(o.Queues, queue.Deferred)
			case "hold":
				o.Queues = append(o.Queues, queue.Hold)
			case "corrupt":
				o.Queues = append(o.Queues, queue.Corrupt)
			default:
				fmt.Fprintf(os.Stderr, "postgate: queue shape: unknown queue %q (incoming, active, deferred, hold, corrupt)\n", name)
				return 2, nil
			}
		}
	}
	return 0, queue.WriteShape(os.Stdout, snap.List(), o)
}

// reloadCmd asks the running daemon to re-read its configuration. The
// daemon reads the directory it was started with; -c names the queue it
// runs on (through that configuration's queue_directory).
func reloadCmd(args []string) int {
	fs := flag.NewFlagSet("reload", flag.ExitOnError)
	dir := configFlag(fs)
	fs.Parse(args)
	cfg, err := loadConfig(*dir, false)
	if err != nil {
		printError("fatal: ", err)
		return 1
	}
	reply, err := controlDaemon(cfg.Get("queue_directory"), gateway.ControlRequest{Op: "reload"})
	if errors.Is(err, errNoDaemon) {
		fmt.Fprintln(os.Stderr, "postgate: fatal: the postgate mail system is not running")
		return 1
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: fatal: %v\n", err)
		return 1
	}
	for _, e := range reply.Errors {
		fmt.Fprintf(os.Stderr, "postgate: fatal: %s\n", e)
	}
	if len(reply.Errors) > 0 {
		return 1
	}
	fmt.Fprintln(os.Stderr, "postgate: refreshing the postgate mail system")
	return 0
}

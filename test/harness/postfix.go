package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postfix is a private real Postfix for side-by-side runs: its own
// config_directory and queue_directory in a temp dir, one smtpd on a
// loopback port, logging to a file, in a mount namespace whose
// /etc/resolv.conf points at a loopback address (127.0.0.1, where nothing
// answers, or the test's own DNS server; it never asks the machine's DNS
// server). No service is chrooted.
type Postfix struct {
	t       testing.TB
	Dir     string // temp root: conf/, queue/, data/, maillog, resolv.conf
	Conf    string // config_directory
	Maillog string
	Port    int
	Addr    string
	bin     string // the postfix command
	script  string // script(1), see run
	master  int
}

// postfixSmtpd is master.cf's smtpd line; postfixMaster the rest: the
// services a relay needs, none chrooted.
const postfixSmtpd = "PORT inet n - n - - smtpd\n"

const postfixMaster = `pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`

// StartPostfix writes the config (the head below, with extraMain's
// settings replacing the head's parameters of the same name), starts
// Postfix and waits until its smtpd answers. It is stopped when the test
// ends.
func StartPostfix(t testing.TB, extraMain string) *Postfix {
	t.Helper()
	return startPostfix(t, extraMain, postfixSmtpd, "127.0.0.1")
}

// StartPostfixDNS is StartPostfix with Postfix's resolver asking port 53
// of nameserver, a loopback address (see DNSAt for one a test serves).
func StartPostfixDNS(t testing.TB, extraMain, nameserver string) *Postfix {
	t.Helper()
	return startPostfix(t, extraMain, postfixSmtpd, nameserver)
}

// StartPostfixWith is StartPostfix with front's master.cf lines (PORT
// replaced by the listening address) in place of the smtpd line, e.g. a
// postscreen line with its smtpd pass and dnsblog lines.
func StartPostfixWith(t testing.TB, extraMain, front string) *Postfix {
	t.Helper()
	return startPostfix(t, extraMain, front, "127.0.0.1")
}

func startPostfix(t testing.TB, extraMain, front, nameserver string) *Postfix {
	t.Helper()
	if ip := net.ParseIP(nameserver); ip == nil || !ip.IsLoopback() {
		t.Fatalf("Postfix's nameserver %q is not a loopback address", nameserver)
	}
	postfix, unshare := Need(t, "postfix", "postfix"), Need(t, "unshare", "util-linux")
	// Postfix's daemons run as user postfix and chdir into the queue, so
	// every path component must be searchable (t.TempDir's parent is 0700).
	dir, err := os.MkdirTemp("", "postgate-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postfix{t: t, Dir: dir, Conf: filepath.Join(dir, "conf"), Maillog: filepath.Join(dir, "maillog"),
		Port: FreePort(t), bin: postfix, script: Need(t, "script", "bsdutils")}
	p.Addr = fmt.Sprintf("127.0.0.1:%d", p.Port)
	main := fmt.Sprintf(`# written by the test harness
compatibility_level = 3.6
myhostname = postfix.bench.test
mydomain = bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
# no /etc/aliases here: an empty alias map avoids warnings at every start
alias_maps =
alias_database =
`, dir)
	main = mergeMain(main, extraMain)
	master := strings.ReplaceAll(front+postfixMaster, "PORT", p.Addr)
	for _, d := range []string{dir, p.Conf, filepath.Join(dir, "queue")} {
		err := os.MkdirAll(d, 0o755)
		if err == nil {
			err = os.Chmod(d, 0o755) // whatever the umask
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{"conf/main.cf": main, "conf/master.cf": master, "resolv.conf": "nameserver " + nameserver + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// check creates the queue's subdirectories with their owners.
	if out, err := p.run(p.bin, "-c", p.Conf, "check"); err != nil {
		t.Fatalf("postfix check: %v\n%s\n--- maillog:\n%s", err, out, p.Log())
	}
	// The master and all its children stay in the new mount namespace, so
	// they see only the private resolv.conf. (unshare -m makes mounts
	// private: the machine's own /etc/resolv.conf is untouched.)
	t.Cleanup(p.Stop)
	if out, err := p.run(unshare, "-m", "sh", "-c", `mount --bind "$1" /etc/resolv.conf && exec "$2" -c "$3" start`,
		"sh", filepath.Join(dir, "resolv.conf"), p.bin, p.Conf); err != nil {
		p.fail("postfix start: %v\n%s", err, out)
	}
	// Bounded, and generous: under make test's load (and -race) a start
	// has taken more than 15 s.
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if p.master == 0 {
			b, _ := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
			p.master, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond); err == nil && p.master != 0 {
			c.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.fail("postfix did not listen on %s (master pid %d)", p.Addr, p.master)
	return nil
}

// fail ends the test with Postfix's own view: its maillog and check output.
func (p *Postfix) fail(format string, args ...any) {
	p.t.Helper()
	check, _ := p.run(p.bin, "-c", p.Conf, "check")
	p.t.Fatalf("%s\n--- postfix check:\n%s--- maillog:\n%s", fmt.Sprintf(format, args...), check, p.Log())
}

// run runs a command under script(1), for a terminal: Postfix's commands
// print their messages on stderr only when it is one (else only to the
// maillog, which errors before logging starts never reach).
func (p *Postfix) run(argv ...string) (string, error) {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	out, err := exec.Command(p.script, "-qec", strings.Join(quoted, " "), "/dev/null").CombinedOutput()
	return strings.ReplaceAll(string(out), "\r\n", "\n"), err
}

// Log returns the maillog_file contents.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.Maillog)
	return string(b)
}

// MasterPid is the master daemon's PID; every Postfix process descends
// from it.
func (p *Postfix) MasterPid() int { return p.master }

// Stop runs `postfix stop` (bounded) and waits (bounded) for the master to
// go; if it lingers, the master and its children are killed by PID.
func (p *Postfix) Stop() {
	if p.master == 0 {
		return // never came up
	}
	tree := ProcessTree(p.master)
	runBounded(20*time.Second, p.bin, "-c", p.Conf, "stop")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !Alive(p.master) {
			break
		}
	}
	for _, pid := range append(tree, ProcessTree(p.master)...) {
		if Alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	p.master = 0
}

// mergeMain is head with extra's settings: a parameter extra sets is taken
// out of head, so that each is defined once. (Postfix takes the later of
// two definitions, but every process then warns about it at start; with
// maillog_file, postlogd logs its own warnings into its own socket, and
// when that is full postlogd, and every process that logs, hangs for good.)
func mergeMain(head, extra string) string {
	set := map[string]bool{}
	for _, l := range strings.Split(extra, "\n") {
		if name, _, ok := strings.Cut(l, "="); ok && l != "" && l[0] != ' ' && l[0] != '\t' && l[0] != '#' {
			set[strings.TrimSpace(name)] = true
		}
	}
	var out []string
	for _, l := range strings.Split(head, "\n") {
		if name, _, ok := strings.Cut(l, "="); ok && set[strings.TrimSpace(name)] {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + extra
}

// runBounded runs a command in its own process group and kills the group
// if it takes longer than limit.
func runBounded(limit time.Duration, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(limit):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("%s: still running after %v: killed", strings.Join(argv, " "), limit)
	}
}

// Alive reports whether pid runs (exists and is not a zombie).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// ProcessTree returns root and all its live descendants, from /proc.
func ProcessTree(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := ProcStat(pid); f != nil {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], pid)
		}
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// ProcStat returns the fields of /proc/PID/stat after the command name:
// [0] is the state, [1] the ppid, [11..14] utime, stime, cutime, cstime
// (proc(5) fields 3.. shifted by 3); nil if the process is gone.
func ProcStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the name may hold spaces
	if i < 0 {
		return nil
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return nil
	}
	return f
}

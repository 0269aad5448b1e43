package bench

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postgate/test/harness"
)

// server is one mail server under comparison, relaying relay.test to its
// own counting sink.
type server struct {
	name string
	addr string
	sink *countSink
	root int // PID whose process tree is the server
	log  func() string
	// floor marks the bare sink as the server (floorServer): measured in
	// the one-message shape only, as a bound, not compared.
	floor bool
}

// floorServer is a server that does nothing but answer SMTP and discard:
// smtp-sink, a single C process, taking the load straight. Under the same
// load it shows how fast any server could go on this machine, and so
// what the load itself leaves of the CPU.
func floorServer(b *testing.B) server {
	s := startCountSink(b)
	return server{name: "floor", addr: fmt.Sprintf("127.0.0.1:%d", s.port), sink: s, root: s.pid,
		log: func() string { return "" }, floor: true}
}

// startServers starts postgate and a real Postfix configured alike (relay
// for 127.0.0.0/8 and relay.test, routed by transport_maps to [127.0.0.1]
// and a sink each). Both run for the whole benchmark, one measured at a time.
func startServers(b *testing.B) []server { return startServersWith(b, "") }

// startServersWith starts both servers with extra main.cf settings.
func startServersWith(b *testing.B, extra string) []server { return startServersDNS(b, extra, "") }

// startServersDNS is startServersWith with both servers' resolver asking
// port 53 of nameserver, a loopback address ("": the harness's defaults).
func startServersDNS(b *testing.B, extra, nameserver string) []server {
	routes := func(s *countSink) string {
		return fmt.Sprintf("mynetworks = 127.0.0.0/8\nrelay_domains = relay.test\n"+
			"transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }\n", s.port) + extra
	}
	pgSink, pfSink := startCountSink(b), startCountSink(b)
	var pg *harness.Postgate
	var pf *harness.Postfix
	if nameserver == "" {
		pg, pf = harness.Start(b, routes(pgSink), ""), harness.StartPostfix(b, routes(pfSink))
	} else {
		pg = harness.Start(b, routes(pgSink)+"postgate_dns_servers = "+nameserver+":53\n", "")
		pf = harness.StartPostfixDNS(b, routes(pfSink), nameserver)
	}
	return []server{
		{"postgate", pg.Addr, pgSink, pg.Pid(), func() string { return pg.Log("") }, false},
		{"postfix", pf.Addr, pfSink, pf.MasterPid(), pf.Log, false},
	}
}

// BenchmarkRelayVsPostfix: smtp-source (20 sessions, 2 KiB messages) →
// server → smtp-sink, for postgate and for Postfix in the same run, in both
// traffic shapes: one message per connection (as most internet clients
// send) and kept-open sessions (smtp-source -d). The rate is end to end:
// the messages over the time from smtp-source's start to the last message
// at the sink. CPU is the server's whole process tree; per connection it is
// reported for the one-message shape, where every message is a connection.
// The servers take turns (-relay.rounds), and each figure sums a server's
// turns. The workload is fixed, so b.N is ignored: run with -benchtime 1x.
//
// A third turn in the one-message shape sends the load straight to a bare
// sink (floorServer): conn-msgs/s-floor is what a server doing no work
// would reach, and conn-budget-us/conn-10x is the most CPU per connection
// a server could spend and still reach 10× Postfix's rate with the CPUs
// it has: their time per second over 10× Postfix's rate, less what the
// load took per message on the same CPUs in postgate's turns.
func BenchmarkRelayVsPostfix(b *testing.B) {
	relayVsPostfix(b, append(startServers(b), floorServer(b)))
}

func relayVsPostfix(b *testing.B, servers []server) { relayMessages(b, servers, 20000) }

var relayRounds = flag.Int("relay.rounds", 4, "relay benchmarks: the servers take turns this many times per traffic shape, each sending its share of the messages, so that a change in the machine's speed during the run (this machine's CPU time per message has moved by half from minute to minute) falls on both servers alike")

// shapeTotals is what one server did in one traffic shape, summed over
// its turns.
type shapeTotals struct {
	secs, cpu, sink, self, client float64
	pss                           float64 // the peak
}

// relayMessages is relayVsPostfix with a number of messages per shape.
// The servers take turns (-relay.rounds): postgate's share takes seconds
// and Postfix's more than a minute, so one turn each would compare two
// different stretches of the machine's time.
func relayMessages(b *testing.B, servers []server, messages int) {
	source := harness.Need(b, "smtp-source", "postfix")
	shapes := []struct {
		name string
		args []string
	}{{"conn", nil}, {"kept", []string{"-d"}}}
	rounds := max(1, min(*relayRounds, messages/100))
	cpus := pinServers(b, servers)
	b.ResetTimer()
	for _, shape := range shapes {
		totals := make([]shapeTotals, len(servers))
		for r := range rounds {
			share := messages / rounds
			if r == rounds-1 {
				share = messages - share*(rounds-1)
			}
			for i, s := range servers {
				if !s.floor || shape.name == "conn" {
					relayTurn(b, source, s, shape.args, share, &totals[i])
				}
			}
		}
		rate := map[string]float64{}
		var load float64 // the load's CPU per message in postgate's turns
		for i, s := range servers {
			t, n := totals[i], float64(messages)
			if s.floor {
				if shape.name == "conn" {
					rate[s.name] = n / t.secs
					b.ReportMetric(rate[s.name], "conn-msgs/s-floor")
					b.ReportMetric(t.cpu/n*1e6, "cpu-us/conn-floor")
				}
				continue
			}
			rate[s.name] = n / t.secs
			if s.name == "postgate" {
				if cpus == runtime.NumCPU() { // else the load is on other CPUs
					load = (t.client + t.sink + t.self) / n
				}
			}
			b.ReportMetric(rate[s.name], shape.name+"-msgs/s-"+s.name)
			b.ReportMetric(t.cpu/(n/1000), shape.name+"-cpu-s/1k-"+s.name)
			if shape.name == "conn" {
				b.ReportMetric(t.cpu/n*1e6, "cpu-us/conn-"+s.name)
			}
			// What the client, the sink and this process spent on the
			// same cores: CPU the server under test could not have.
			b.ReportMetric(t.client/n*1e6, shape.name+"-source-cpu-us/msg-"+s.name)
			b.ReportMetric(t.sink/n*1e6, shape.name+"-sink-cpu-us/msg-"+s.name)
			b.ReportMetric(t.self/n*1e6, shape.name+"-bench-cpu-us/msg-"+s.name)
			b.ReportMetric(t.pss, shape.name+"-pss-MB-"+s.name)
		}
		b.ReportMetric(rate["postgate"]/rate["postfix"], shape.name+"-ratio-pg/pf")
		if f, ok := rate["floor"]; ok {
			b.ReportMetric(f/rate["postfix"], "conn-ratio-floor/pf")
			b.ReportMetric((float64(cpus)/(10*rate["postfix"])-load)*1e6, "conn-budget-us/conn-10x")
		}
	}
}

// relayTurn sends messages through s with smtp-source and adds the time
// until the last reached the sink, and the CPU each party used, to t.
func relayTurn(b *testing.B, source string, s server, args []string, messages int, t *shapeTotals) {
	base := s.sink.n.Load()
	cpu0, sink0, self0 := treeCPU(s.root), treeCPU(s.sink.pid), selfCPU()
	pss := samplePSS(s.root, time.Second)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	argv := append([]string{"-s", "20", "-l", "2048", "-m", fmt.Sprint(messages),
		"-f", "a@src.test", "-t", "u@relay.test"}, args...)
	cmd := exec.CommandContext(ctx, source, append(argv, s.addr)...)
	out, err := cmd.CombinedOutput()
	cancel()
	if err != nil {
		b.Fatalf("%s: smtp-source: %v\n%s", s.name, err, out)
	}
	end := s.waitSink(b, int(base)+messages, start)
	t.secs += end.Sub(start).Seconds()
	t.cpu += treeCPU(s.root) - cpu0
	t.sink += treeCPU(s.sink.pid) - sink0
	t.self += selfCPU() - self0
	t.client += (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	t.pss = max(t.pss, pss())
}

// BenchmarkDataLatency: 2,000 messages of 2 KiB over 20 concurrent
// sessions (100 each) to each server; per message the time from sending the
// final "." to reading the 250 reply. Fixed workload, like the above.
func BenchmarkDataLatency(b *testing.B) {
	servers := startServers(b)
	const sessions, perSession = 20, 100
	body := message()
	b.ResetTimer()
	for _, s := range servers {
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		errs := make(chan error, sessions)
		start := time.Now()
		for i := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := sendTimed(s.addr, i, perSession, body)
				mu.Lock()
				lat = append(lat, l...)
				mu.Unlock()
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatalf("%s: %v", s.name, err)
		}
		// Let deliveries finish so they do not load the next server's run.
		s.waitSink(b, sessions*perSession, start)
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
		b.ReportMetric(pct(0.50), "p50-ms-"+s.name)
		b.ReportMetric(pct(0.99), "p99-ms-"+s.name)
	}
}

// sendTimed sends n messages over one session and returns each one's
// DATA-to-250 time. go-smtp buffers the 2 KiB body and writes it with the
// final "." (as clients do), so the clock starts when the "." is written.
func sendTimed(addr string, session, n int, body []byte) ([]time.Duration, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = time.Minute, time.Minute
	if err := c.Hello("client.src.test"); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := range n {
		if err := c.Mail("a@src.test", nil); err != nil {
			return lat, err
		}
		if err := c.Rcpt("u@relay.test", nil); err != nil {
			return lat, err
		}
		w, err := c.Data()
		if err != nil {
			return lat, err
		}
		fmt.Fprintf(w, "Message-ID: <%d.%d@src.test>\r\n", session, i)
		w.Write(body)
		t0 := time.Now()
		if err := w.Close(); err != nil {
			return lat, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, c.Quit()
}

// message is a 2 KiB message (with the Message-ID header sendTimed adds).
func message() []byte {
	var sb strings.Builder
	sb.WriteString("From: <a@src.test>\r\nTo: <u@relay.test>\r\nSubject: latency\r\n\r\n")
	for sb.Len() < 2048-40 {
		sb.WriteString(strings.Repeat("x", 76) + "\r\n")
	}
	return []byte(sb.String())
}

// countSink is smtp-sink -c without dumps: it prints "sess=N quit=N mesg=N"
// with a CR after every event. The output goes to a file, not a pipe, and
// is read every 5 ms for the last mesg count and when it changed, so
// counting costs the benchmark no wakeup per event on the cores the
// servers share with it.
type countSink struct {
	port int
	pid  int
	n    atomic.Int64
	at   atomic.Int64 // UnixNano of the last count change (to within the 5 ms poll)
}

func startCountSink(b *testing.B) *countSink {
	return startCountSinkOn(b, harness.FreePort(b))
}

// startCountSinkOn starts the sink on a port chosen earlier.
func startCountSinkOn(b *testing.B, port int) *countSink {
	bin := harness.Need(b, "smtp-sink", "postfix")
	s := &countSink{port: port}
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	out, err := os.Create(filepath.Join(b.TempDir(), "sink.out"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", "-u", "nobody", addr, "256")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	stop := make(chan struct{})
	polled := make(chan struct{})
	b.Cleanup(func() {
		close(stop)
		<-polled
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		out.Close()
	})
	go func() {
		defer close(polled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		tail := make([]byte, 128)
		var size int64
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			fi, err := out.Stat()
			if err != nil || fi.Size() == size {
				continue
			}
			size = fi.Size()
			k, _ := out.ReadAt(tail[:min(size, int64(len(tail)))], max(0, size-int64(len(tail))))
			line := string(tail[:k])
			line = line[strings.LastIndexByte(strings.TrimRight(line, "\r"), '\r')+1:]
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "mesg="); ok {
					if n, _ := strconv.Atoi(v); int64(n) != s.n.Load() {
						s.at.Store(time.Now().UnixNano())
						s.n.Store(int64(n))
					}
				}
			}
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			b.Fatalf("smtp-sink did not listen on %s", addr)
		}
	}
}

// waitSink waits until s's sink (fresh for each benchmark) has counted want
// messages, bounded by 5 minutes, and returns when the last one arrived.
func (s server) waitSink(b *testing.B, want int, since time.Time) time.Time {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if s.sink.n.Load() >= int64(want) {
			return time.Unix(0, s.sink.at.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	log := s.log()
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	b.Fatalf("%s: sink counted %d of %d messages after %v; maillog tail:\n%s",
		s.name, s.sink.n.Load(), want, time.Since(since), log)
	return time.Time{}
}

// treeCPU is the CPU seconds (user+system) used so far by root's process
// tree: each live process's own time plus its reaped children's (cutime,
// cstime), so Postfix daemons that exited during the run still count, once,
// in the master's figures. Clock ticks are USER_HZ, 100 on Linux.
func treeCPU(root int) float64 {
	var ticks int64
	for _, pid := range harness.ProcessTree(root) {
		if f := harness.ProcStat(pid); f != nil {
			for _, v := range f[11:15] {
				n, _ := strconv.ParseInt(v, 10, 64)
				ticks += n
			}
		}
	}
	return float64(ticks) / 100
}

// selfCPU is the CPU seconds this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// treePSS is the sum of Pss over root's process tree in MB (shared pages
// are split among the processes that map them, so the sum is fair).
func treePSS(root int) float64 {
	var kb int64
	for _, pid := range harness.ProcessTree(root) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				kb += n
			}
		}
	}
	return float64(kb) / 1024
}

// samplePSS samples treePSS every interval until the returned function is
// called, which returns the peak (or for at most 6 minutes, if a failed
// benchmark never calls it). A sample of Postfix's tree reads the smaps of
// some thirty processes: every 250 ms it took a tenth of a core from the
// server it measured.
func samplePSS(root int, every time.Duration) func() float64 {
	var peak float64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for end := time.Now().Add(6 * time.Minute); time.Now().Before(end); {
			peak = max(peak, treePSS(root))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(stop); <-done; return peak }
}

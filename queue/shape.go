package queue

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ShapeOptions are qshape's switches.
type ShapeOptions struct {
	Senders   bool    // -s: count sender domains, one per message, not recipient domains
	Parents   bool    // -p: also count parent domains (".example.com")
	MinSub    int     // -m: a parent domain is shown with at least this many subdomains (5)
	Linear    bool    // -l: buckets of equal width instead of doubling
	Buckets   int     // -b: number of age buckets (10)
	Tick      float64 // -t: bucket width in minutes (5)
	Width     int     // -w: line width (80, never less)
	Queues    []State // the queues counted; qshape's default is incoming and active
	Timestamp time.Time
}

// DefaultShape is qshape's defaults, for the active queue (postgate has no
// incoming queue: a message is active from the moment it is queued).
func DefaultShape(now time.Time) ShapeOptions {
	return ShapeOptions{MinSub: 5, Buckets: 10, Tick: 5, Width: 80, Queues: []State{Active}, Timestamp: now}
}

// WriteShape writes what Postfix's qshape prints for msgs: per domain, the
// number of recipients (or, with Senders, of messages) in each age
// bucket, the busiest domain first, under a TOTAL row. The layout and the
// domain and bucket arithmetic are qshape's, so scripts that parse its
// output read this too. One difference: qshape breaks ties between
// domains of equal count and length in Perl's hash order, which changes
// from run to run; this sorts them by name.
func WriteShape(w io.Writer, msgs []Message, o ShapeOptions) error {
	o.MinSub = max(o.MinSub, 1)
	o.Buckets = max(o.Buckets, 1)
	o.Width = max(o.Width, 80)
	if o.Tick <= 0 {
		o.Tick = 5
	}
	counts := map[string][]int{"TOTAL": make([]int, o.Buckets+1)}
	subs := map[string]int{}
	now := o.Timestamp.Unix()
	for i := range msgs {
		m := &msgs[i]
		if !slices.Contains(o.Queues, m.State) || !envelopeKnown(m) {
			continue
		}
		var addrs []string
		for j, r := range m.Recipients {
			if j >= len(m.Done) || !m.Done[j] {
				addrs = append(addrs, r.Addr)
			}
		}
		if len(addrs) == 0 {
			continue // done, about to leave the queue (qshape skips it too)
		}
		if o.Senders {
			addrs = []string{m.Sender}
		}
		b := o.bucket(now - m.Arrival.Unix())
		for _, a := range addrs {
			counts["TOTAL"][0]++
			counts["TOTAL"][b]++
			d := shapeDomain(a)
			isNew := false
			for {
				c := counts[d]
				if c == nil {
					c = make([]int, o.Buckets+1)
					counts[d] = c
				}
				c[0]++
				old := c[0] > 1
				c[b]++
				if isNew {
					subs[d]++
				}
				isNew = !old
				if !o.Parents {
					break
				}
				parent, ok := parentDomain(d)
				if !ok {
					break
				}
				d = parent
			}
		}
	}

	// The columns: "T", then each bucket's upper age in minutes; each as
	// wide as its heading or its TOTAL count, plus one, at least 3.
	heads := make([]string, o.Buckets+1)
	widths := make([]int, o.Buckets+1)
	dw := o.Width
	t := 0.0
	for i := 0; i <= o.Buckets; {
		h := "T"
		if i > 0 {
			h = perlNum(t)
		}
		if i == o.Buckets && i > 0 {
			h = perlNum(t) + "+"
		}
		l := max(len(strconv.Itoa(counts["TOTAL"][i])), len(h))
		if l > 2 {
			l++
		} else {
			l = 3
		}
		heads[i], widths[i] = h, l
		dw -= l
		if i++; i < o.Buckets {
			if t != 0 && !o.Linear {
				t += t
			} else {
				t += o.Tick
			}
		}
	}
	dw = max(dw, 18)

	bw := bufio.NewWriter(w)
	row := func(d string, cells []string) {
		if len(d) > dw {
			if d[0] == '.' {
				d = ".+" + d[len(d)-dw+2:]
			} else {
				d = "+" + d[len(d)-dw+1:]
			}
		}
		fmt.Fprintf(bw, "%*s", dw, d)
		for i, c := range cells {
			fmt.Fprintf(bw, "%*s", widths[i], c)
		}
		bw.WriteByte('\n')
	}
	row("", heads)
	domains := make([]string, 0, len(counts))
	for d := range counts {
		if strings.HasPrefix(d, ".") && subs[d] < o.MinSub {
			continue
		}
		domains = append(domains, d)
	}
	slices.SortFunc(domains, func(a, b string) int {
		return cmp.Or(counts[b][0]-counts[a][0], len(a)-len(b), strings.Compare(a, b))
	})
	cells := make([]string, o.Buckets+1)
	for _, d := range domains {
		for i, n := range counts[d] {
			cells[i] = strconv.Itoa(n)
		}
		row(d, cells)
	}
	return bw.Flush()
}

// bucket is qshape's: 1 under one tick, then one bucket per doubling (or
// per tick, linear), the last one open-ended.
func (o ShapeOptions) bucket(age int64) int {
	m := float64(age) / (60 * o.Tick)
	if m < 1 {
		return 1
	}
	b := 2 + int(math.Log(m)/math.Log(2))
	if o.Linear {
		b = int(m + 1)
	}
	return min(b, o.Buckets)
}

// shapeDomain is qshape's domain of an address: lowercased, after the
// last '@', doubled dots made single, one leading and one trailing dot
// dropped; MAILER-DAEMON for the null sender.
func shapeDomain(addr string) string {
	a := strings.ToLower(addr)
	if a == "" {
		a = "MAILER-DAEMON"
	}
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		a = a[i+1:]
	}
	a = strings.ReplaceAll(a, "..", ".")
	if len(a) > 1 && a[0] == '.' {
		a = a[1:]
	}
	if len(a) > 1 && a[len(a)-1] == '.' {
		a = a[:len(a)-1]
	}
	return a
}

// qshape -p's parent step: "a.b.example.com" → ".b.example.com" →
// ".example.com", stopping before the top-level domain.
var parentRE = regexp.MustCompile(`^\.?[^.]+\.(.*\.)`)

func parentDomain(d string) (string, bool) {
	m := parentRE.FindStringSubmatchIndex(d)
	if m == nil {
		return "", false
	}
	return "." + d[m[2]:m[3]] + d[m[1]:], true
}

// perlNum formats a float as Perl prints a number (%.15g).
func perlNum(f float64) string {
	return strconv.FormatFloat(f, 'g', 15, 64)
}

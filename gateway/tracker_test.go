package gateway

import "testing"

// replay feeds client bytes and server replies in order, as a connection
// would see them.
type step struct {
	in    string // bytes the client sent
	reply int    // a final reply code the server wrote (0: none)
}

func TestTrackerStats(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  []step
		want   string
		after  string
		bareLF bool
	}{
		{
			name: "one message",
			steps: []step{{in: "EHLO x\r\n", reply: 250}, {in: "MAIL FROM:<a@b>\r\n", reply: 250},
				{in: "RCPT TO:<c@d>\r\n", reply: 250}, {in: "DATA\r\n", reply: 354},
				{in: "Subject: x\r\n\r\nbody\r\n.\r\n", reply: 250}, {in: "QUIT\r\n", reply: 221}},
			want:  " ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
			after: "QUIT",
		},
		{
			name: "pipelined with a rejected recipient",
			steps: []step{{in: "EHLO x\r\n", reply: 250},
				{in: "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n"},
				{reply: 250}, {reply: 554}, {reply: 250}, {reply: 354},
				{in: "x\r\n.\r\nQUIT\r\n"}, {reply: 250}, {reply: 221}},
			want:  " ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6",
			after: "QUIT",
		},
		{
			name: "data content with command-like and dot lines stays content",
			steps: []step{{in: "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"},
				{reply: 250}, {reply: 250}, {reply: 250}, {reply: 354},
				{in: "RSET\r\n..stuffed\r\nx\n.\r\nQUIT\r\nx\r.\r\n"}, {in: ".\r\n"}, {reply: 250}},
			want:  " ehlo=1 mail=1 rcpt=1 data=1 commands=4",
			after: "DATA",
		},
		{
			name: "rejected DATA goes back to commands",
			steps: []step{{in: "EHLO x\r\n", reply: 250}, {in: "DATA\r\n", reply: 503},
				{in: "NOOP\r\n", reply: 250}, {in: "FOO\r\n", reply: 500}},
			want:  " ehlo=1 data=0/1 noop=1 unknown=0/1 commands=2/4",
			after: "FOO",
		},
		{
			name: "BDAT chunks are skipped by count",
			steps: []step{{in: "EHLO x\r\n", reply: 250}, {in: "MAIL FROM:<a@b>\r\n", reply: 250},
				{in: "RCPT TO:<c@d>\r\n", reply: 250}, {in: "BDAT 12\r\nQUIT\r\nRSET\r\n", reply: 250},
				{in: "BDAT 6 LAST\r\nQUIT\r\n", reply: 250}, {in: "QUIT\r\n", reply: 221}},
			want:  " ehlo=1 mail=1 rcpt=1 bdat=2 quit=1 commands=6",
			after: "QUIT",
		},
		{
			name:   "bare LF command line",
			steps:  []step{{in: "EHLO x\n", reply: 250}},
			want:   " ehlo=1 commands=1",
			after:  "EHLO",
			bareLF: true,
		},
		{
			name:  "nothing",
			want:  " commands=0/0",
			after: "CONNECT",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr tracker
			for _, s := range tc.steps {
				if s.in != "" {
					tr.feed([]byte(s.in))
				}
				if s.reply != 0 {
					tr.reply(s.reply)
				}
			}
			if got := tr.stats(); got != tc.want {
				t.Errorf("stats %q, want %q", got, tc.want)
			}
			if got := tr.after(); got != tc.after {
				t.Errorf("after %q, want %q", got, tc.after)
			}
			if tr.bareLF != tc.bareLF {
				t.Errorf("bareLF %v, want %v", tr.bareLF, tc.bareLF)
			}
		})
	}
}

func TestTrackerLongCommandLine(t *testing.T) {
	var tr tracker
	tr.feed(make([]byte, maxCommandLine))
	if tr.tooLong {
		t.Fatal("a line of maxCommandLine bytes is too long")
	}
	tr.feed([]byte("x"))
	if !tr.tooLong {
		t.Fatal("a line over maxCommandLine bytes is not flagged")
	}
}

package queue

// Reply is the remote server's reply a result quotes, as data, so a
// notice reports it as Postfix does ("Remote-MTA: dns; Host",
// "Diagnostic-Code: smtp; ...") without reading it back out of the
// reason's words. It lives only as long as the attempt that got it: a
// notice is built from the attempt that failed or delayed its recipients,
// as Postfix's bounce reads the defer log of the current attempt, so no
// queue record needs to keep it.
type Reply struct {
	Host string // the server's host name
	Code int    // 550
	DSN  string // the enhanced status code it stands for, "5.1.1"
	// Text is the reply as sent, every line with its code, "\n" between
	// lines.
	Text string
}

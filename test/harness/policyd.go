package harness

import (
	"fmt"
	"path/filepath"
	"testing"
)

// StartPolicyd runs `postgate policyd` on config directory dir (see
// Config; it may be a running postgate's, to share its main.cf), whose
// main.cf sets postgate_policyd_listen = inet:127.0.0.1:port, and waits
// until it answers there. It is killed when the test ends; Stop sends
// SIGTERM.
func StartPolicyd(t testing.TB, dir string, port int) *Postgate {
	t.Helper()
	p := &Postgate{t: t, Dir: dir, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port),
		Queue: filepath.Join(dir, "queue"), Maillog: filepath.Join(dir, "maillog"), command: "policyd"}
	p.Restart()
	t.Cleanup(p.Kill)
	return p
}

package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"postgate/queue"
)

// The control socket: the admin's queue commands (postgate queue hold,
// release, delete, requeue, expire, flush) reach the running daemon, the
// queue's one writer, through a Unix socket in the queue directory, only
// root's. One request a connection: a JSON line in, a JSON line out.

// ControlSocket is the socket's name in queue_directory.
const ControlSocket = "control"

// controlTimeout bounds a request: reading it, and applying it.
const controlTimeout = time.Minute

// ControlRequest is an admin command.
type ControlRequest struct {
	Op     string   `json:"op"`               // queue.AdminOps, or "flush"
	IDs    []string `json:"ids,omitempty"`    // queue IDs, or "ALL"
	Domain string   `json:"domain,omitempty"` // flush: one destination domain
}

// ControlReply is what a command did.
type ControlReply struct {
	Changed int      `json:"changed"`
	Errors  []string `json:"errors,omitempty"`
}

// listenControl binds the control socket, replacing one a daemon that
// stopped left behind (the queue's lock, taken before, says none runs).
func listenControl(qdir string) (net.Listener, error) {
	path := filepath.Join(qdir, ControlSocket)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return l, nil
}

// serveControl answers admin commands until l is closed.
func (g *Gateway) serveControl(ctx context.Context, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go g.controlConn(ctx, c)
	}
}

func (g *Gateway) controlConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(controlTimeout))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return
	}
	var req ControlRequest
	var reply ControlReply
	if err := json.Unmarshal(line, &req); err != nil {
		reply.Errors = []string{"bad request: " + err.Error()}
	} else if req.Op == "pickup" {
		select {
		case g.pickupNow <- struct{}{}:
		default: // a scan is due anyway
		}
	} else if req.Op == "reload" {
		if err := g.Reload(); err != nil {
			reply.Errors = []string{err.Error()}
		}
	} else {
		ctx, cancel := context.WithTimeout(ctx, controlTimeout)
		reply = ApplyControl(ctx, g.store, req)
		cancel()
		if reply.Changed > 0 {
			g.log.Logf("postsuper", "%s", ControlSummary(req.Op, reply.Changed))
		}
	}
	b, _ := json.Marshal(reply)
	c.Write(append(b, '\n'))
}

// ApplyControl applies a command to the store: the daemon's, or one the
// command opened itself while no daemon runs.
func ApplyControl(ctx context.Context, s *queue.Store, req ControlRequest) ControlReply {
	if req.Op == "flush" {
		if req.Domain != "" {
			s.FlushDomain(req.Domain)
		} else {
			s.Flush()
		}
		return ControlReply{}
	}
	n, errs := s.Admin(ctx, req.Op, req.IDs)
	reply := ControlReply{Changed: n}
	for _, err := range errs {
		reply.Errors = append(reply.Errors, err.Error())
	}
	return reply
}

// ControlSummary is postsuper's summary of a command: "Placed on hold: 2
// messages".
func ControlSummary(op string, n int) string {
	what := map[string]string{"hold": "Placed on hold", "release": "Released from hold", "delete": "Deleted",
		"requeue": "Requeued", "expire": "Force-expired"}[op]
	noun := "messages"
	if n == 1 {
		noun = "message"
	}
	return fmt.Sprintf("%s: %d %s", what, n, noun)
}

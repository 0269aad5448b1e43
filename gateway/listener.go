package gateway

import (
	"net"
	"time"
)

// listener owns connection accounting for one service socket: at most
// maxProc sessions at once (master.cf maxproc, else default_process_limit).
// One connection too many is told "421 4.3.2 All server ports are busy"
// (postscreen's text) and closed, where Postfix's smtpd would just not
// accept it. Accept never fails for a refused client, since an error from
// Accept stops go-smtp's Serve.
type listener struct {
	net.Listener
	svc  *service
	slot chan struct{} // shared by all sockets of the service
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slot <- struct{}{}:
			return newConn(nc, l.svc.timeout, func() { <-l.slot }), nil
		default:
			go l.refuse(nc)
		}
	}
}

func (l *listener) refuse(nc net.Conn) {
	addr, _ := remoteAddr(nc)
	l.svc.log.Logf("smtpd", "NOQUEUE: reject: CONNECT from unknown[%s]: all server ports busy", addr)
	nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte("421 4.3.2 All server ports are busy\r\n"))
	nc.Close()
}

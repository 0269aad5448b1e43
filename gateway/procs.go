package gateway

import (
	"context"
	"os"
	"runtime"
	"time"
)

// minProcs is the fewest Ps (GOMAXPROCS) the daemon runs with. The
// commit loop's fdatasync blocks its thread for a fraction of a
// millisecond to tens of them, holding its P until the runtime's monitor
// takes the P back, which can take up to 10 ms when the process was idle
// before. With a single P, every session stalls for that long: on one CPU,
// two Ps relayed a quarter more mail one message per connection, and half
// again as much over kept-open sessions, for less CPU per message.
const minProcs = 2

// keepProcs holds GOMAXPROCS at minProcs or more until ctx ends, unless the
// admin set GOMAXPROCS: at once, and again if the runtime lowers it later
// (Go follows the CPU affinity and cgroup limits of the process, which
// may shrink while it runs). Setting it ends the runtime's automatic
// updates, so a host that later gets more CPUs is followed only after a
// restart; a host with two CPUs or more at the start keeps them.
func keepProcs(ctx context.Context) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if raiseProcs() {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if raiseProcs() {
				return
			}
		}
	}
}

// raiseProcs sets GOMAXPROCS to minProcs when it is lower, and reports
// whether it did.
func raiseProcs() bool {
	if runtime.GOMAXPROCS(0) >= minProcs {
		return false
	}
	runtime.GOMAXPROCS(minProcs)
	return true
}

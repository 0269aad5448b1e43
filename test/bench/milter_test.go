package bench

import (
	"testing"

	"postgate/test/harness"
)

// BenchmarkRelaySpamassMilter is BenchmarkRelayVsPostfix with both
// servers calling the same spamass-milter (with spamd, two children, no
// network tests) for every message, as sites run SpamAssassin before the
// queue. spamd's work per message bounds both, so the run is short: 400
// messages per traffic shape. The CPU figures are the servers' own, not
// spamd's. Run with -benchtime 1x.
func BenchmarkRelaySpamassMilter(b *testing.B) {
	milter := harness.StartSpamassMilter(b)
	relayMessages(b, startServersWith(b, "smtpd_milters = inet:"+milter+"\n"), 400)
}

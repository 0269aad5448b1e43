package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"postgate/gateway/metrics"
	"postgate/test/harness"
)

// TestMetrics: after real traffic (a relayed message delivered to the
// sink, a relay attempt refused, a message for a dead next hop deferred),
// /metrics parses with Prometheus's text parser and its counters say what
// the test sent; every query of the Grafana dashboard names a metric the
// server exports.
func TestMetrics(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	dead := harness.StartSink(t)
	dead.Stop()
	mport, pport := harness.FreePort(t), harness.FreePort(t)
	// Recipients also go to a policy server (postgate's own, on the same
	// main.cf), for its latency histogram.
	p := harness.Start(t, rejectUnauth+routes("relay.test", sink, "dead.test", dead)+
		"relay_domains = relay.test dead.test\nminimal_backoff_time = 1h\nmaximal_backoff_time = 2h\nqueue_run_delay = 1h\n"+
		fmt.Sprintf("postgate_metrics_address = 127.0.0.1:%d\n", mport)+
		fmt.Sprintf("smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:%[1]d\npostgate_policyd_listen = inet:127.0.0.1:%[1]d\npostgate_policyd_restrictions = permit\n", pport), "")
	harness.StartPolicyd(t, p.Dir, pport)

	send := func(rcpt string) {
		t.Helper()
		c := harness.Dial(t, p.Addr, outside)
		defer c.Expect(221, "QUIT")
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<a@src.test>")
		c.Expect(250, "RCPT TO:<%s>", rcpt)
		c.Expect(354, "DATA")
		c.Send("Subject: metrics\r\n\r\nx\r\n.\r\n")
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("DATA: %d %s", code, text)
		}
	}
	var fams map[string]*dto.MetricFamily
	scrape := func() {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("/metrics does not parse: %v", err)
		}
	}
	// The harness's own probe of the port counts as a connection.
	scrape()
	var probes float64
	for _, m := range fams["postgate_smtpd_connections_total"].GetMetric() {
		probes += m.GetCounter().GetValue()
	}

	send("u@relay.test")
	send("v@dead.test")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(554, "RCPT TO:<w@elsewhere.test>")
	c.Expect(221, "QUIT")
	sink.WaitMessages(1, 30*time.Second)
	p.Log("to=<v@dead.test>")

	// value is the sum of the family's series whose labels include want.
	value := func(name string, want map[string]string) float64 {
		var sum float64
		f := fams[name]
		if f == nil {
			return -1
		}
	series:
		for _, m := range f.Metric {
			for k, v := range want {
				found := false
				for _, lp := range m.Label {
					found = found || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
		return sum
	}
	checks := []struct {
		name string
		want map[string]string
		n    float64
	}{
		{"postgate_smtpd_connections_total", nil, probes + 3},
		{"postgate_smtpd_messages_total", nil, 2},
		{"postgate_smtpd_actions_total", map[string]string{"action": "reject", "stage": "RCPT", "code": "554", "reason": "Relay access denied"}, 1},
		{"postgate_deliveries_total", map[string]string{"transport": "smtp", "result": "sent"}, 1},
		{"postgate_deliveries_total", map[string]string{"transport": "smtp", "result": "deferred"}, 1},
		{"postgate_queue_messages", map[string]string{"queue": "deferred"}, 1},
		{"postgate_queue_messages", map[string]string{"queue": "active"}, 0},
		{"postgate_smtpd_sessions", nil, 0},
		{"postgate_queue_damaged_records", nil, 0},
		{"postgate_policy_request_duration_seconds", map[string]string{"server": fmt.Sprintf("127.0.0.1:%d", pport), "result": "ok"}, 2},
	}
	// Deliveries are counted when they end; sessions when they close:
	// scrape until the counts settle (bounded).
	var bad []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		scrape()
		bad = nil
		for _, c := range checks {
			if got := value(c.name, c.want); got != c.n {
				bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", c.name, c.want, got, c.n))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, b := range bad {
		t.Error(b)
	}

	// The dashboard's queries name only exported metrics.
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(metrics.Dashboard, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	names := regexp.MustCompile(`postgate_[a-z0-9_]+`)
	queries := 0
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			queries++
			for _, name := range names.FindAllString(target.Expr, -1) {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && fams[b].GetType() == dto.MetricType_HISTOGRAM {
						base = b
					}
				}
				if fams[base] == nil {
					t.Errorf("dashboard panel %q queries %s, which the server does not export", panel.Title, name)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("dashboard has %d queries", queries)
	}
}

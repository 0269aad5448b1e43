// Package metrics holds postgate's Prometheus metrics and serves them on
// postgate_metrics_address. The gateway counts into it at the points its
// mail log already marks (connect, each reject or other action, queued,
// each delivery result), so a metric and the log line for the same event
// agree. dashboard.json is a Grafana dashboard over these metrics.
package metrics

import (
	"context"
	_ "embed"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Dashboard is the Grafana dashboard (JSON) over these metrics.
//
//go:embed dashboard.json
var Dashboard []byte

// Metrics are one process's metrics.
type Metrics struct {
	reg *prometheus.Registry

	Connections     *prometheus.CounterVec   // service
	Sessions        *prometheus.GaugeVec     // service
	Actions         *prometheus.CounterVec   // action, stage, code, reason
	Messages        *prometheus.CounterVec   // service
	MessageBytes    *prometheus.CounterVec   // service
	Deliveries      *prometheus.CounterVec   // transport, destination, result
	DeliverySeconds *prometheus.HistogramVec // transport, result
	PolicySeconds   *prometheus.HistogramVec // server, result

	// Bounded label values: a reject reason a restriction's custom text
	// makes, or a destination domain of Internet mail, could otherwise
	// grow the series without end.
	reasons, destinations *bounded
}

// maxLabelValues bounds the distinct values of a free-text label; later
// ones count as "other".
const maxLabelValues = 200

// New builds the metrics with the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postgate_smtpd_connections_total", Help: "SMTP connections accepted, by master.cf service.",
		}, []string{"service"}),
		Sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "postgate_smtpd_sessions", Help: "SMTP sessions in progress, by master.cf service.",
		}, []string{"service"}),
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postgate_smtpd_actions_total",
			Help: "Actions logged by smtpd (reject, hold, discard, warn, filter, redirect), by stage (CONNECT, RCPT, END-OF-MESSAGE, ...), reply code and reason.",
		}, []string{"action", "stage", "code", "reason"}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postgate_smtpd_messages_total", Help: "Messages queued, by master.cf service.",
		}, []string{"service"}),
		MessageBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postgate_smtpd_message_bytes_total", Help: "Content bytes of the messages queued, by master.cf service.",
		}, []string{"service"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postgate_deliveries_total", Help: "Recipient delivery results (sent, deferred, bounced), by transport and destination.",
		}, []string{"transport", "destination", "result"}),
		DeliverySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "postgate_delivery_duration_seconds", Help: "Time of one delivery attempt (a batch of recipients), by transport and result.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"transport", "result"}),
		PolicySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "postgate_policy_request_duration_seconds", Help: "Time of one policy server query (check_policy_service), by server and result (ok, or failed: no answer after every try).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 100},
		}, []string{"server", "result"}),
		reasons:      newBounded(maxLabelValues),
		destinations: newBounded(maxLabelValues),
	}
	m.reg.MustRegister(m.Connections, m.Sessions, m.Actions, m.Messages, m.MessageBytes, m.Deliveries, m.DeliverySeconds, m.PolicySeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds a collector (the queue's and the resolver's, read at
// scrape time).
func (m *Metrics) Register(c prometheus.Collector) { m.reg.MustRegister(c) }

// Action counts one logged action. text is the reply as logged, "554 5.7.1
// <addr>: Relay access denied"; its code and the reason (the text after
// the address, up to the first ':' or ';', as pflogsumm groups rejects)
// become labels.
func (m *Metrics) Action(action, stage, text string) {
	code, reason := "", text
	if len(text) >= 3 && text[0] >= '2' && text[0] <= '5' {
		code, reason = text[:3], strings.TrimSpace(text[3:])
		// The enhanced status code.
		if f, rest, ok := strings.Cut(reason, " "); ok && strings.Count(f, ".") == 2 {
			reason = rest
		}
	}
	if strings.HasPrefix(reason, "<") {
		if i := strings.Index(reason, ">: "); i > 0 {
			reason = reason[i+3:]
		}
	}
	if i := strings.IndexAny(reason, ":;"); i >= 0 {
		reason = reason[:i]
	}
	m.Actions.WithLabelValues(action, stage, code, m.reasons.value(strings.TrimSpace(reason))).Inc()
}

// Delivery counts one attempt's results for n recipients each.
func (m *Metrics) Delivery(transport, destination string, results map[string]int, took time.Duration) {
	dest := m.destinations.value(destination)
	worst := "sent"
	for result, n := range results {
		m.Deliveries.WithLabelValues(transport, dest, result).Add(float64(n))
		if result == "deferred" || (result == "bounced" && worst == "sent") {
			worst = result
		}
	}
	m.DeliverySeconds.WithLabelValues(transport, worst).Observe(took.Seconds())
}

// Policy observes one policy server query.
func (m *Metrics) Policy(server string, took time.Duration, ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.PolicySeconds.WithLabelValues(server, result).Observe(took.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Serve serves /metrics on l until ctx ends.
func (m *Metrics) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// bounded hands out at most max distinct label values, then "other".
type bounded struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

func newBounded(max int) *bounded { return &bounded{max: max, seen: map[string]struct{}{}} }

func (b *bounded) value(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return "other"
	}
	b.seen[v] = struct{}{}
	return v
}

package gateway

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"postgate/gateway/metrics"
	"postgate/gateway/resolver"
	"postgate/queue"
)

// newMetrics builds the process's metrics with the queue's and the
// resolver's, which are read when scraped.
func newMetrics(store *queue.Store, dns *resolver.Resolver) *metrics.Metrics {
	m := metrics.New()
	m.Register(queueCollector{store})
	m.Register(resolverCollector{dns})
	return m
}

var (
	queueMessages = prometheus.NewDesc("postgate_queue_messages", "Messages in each queue (active, deferred, hold, corrupt).", []string{"queue"}, nil)
	queueBytes    = prometheus.NewDesc("postgate_queue_bytes", "Content bytes of the messages in each queue.", []string{"queue"}, nil)
	queueDamaged  = prometheus.NewDesc("postgate_queue_damaged_records", "Queue log records found damaged and named by queue ID since the queue opened (alert on any).", nil, nil)
	queueLost     = prometheus.NewDesc("postgate_queue_damaged_bytes", "Damaged queue log bytes no record header vouched for, dropped unnamed, since the queue opened.", nil, nil)
)

type queueCollector struct{ s *queue.Store }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueMessages
	ch <- queueBytes
	ch <- queueDamaged
	ch <- queueLost
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	msgs, bytes := c.s.Counts()
	for st := queue.Active; st <= queue.Corrupt; st++ {
		ch <- prometheus.MustNewConstMetric(queueMessages, prometheus.GaugeValue, float64(msgs[st]), st.String())
		ch <- prometheus.MustNewConstMetric(queueBytes, prometheus.GaugeValue, float64(bytes[st]), st.String())
	}
	d := c.s.Damage()
	ch <- prometheus.MustNewConstMetric(queueDamaged, prometheus.GaugeValue, float64(d.Records))
	ch <- prometheus.MustNewConstMetric(queueLost, prometheus.GaugeValue, float64(d.Bytes))
}

var (
	dnsLookups   = prometheus.NewDesc("postgate_dns_lookups_total", "Questions asked of the resolver.", nil, nil)
	dnsCacheHits = prometheus.NewDesc("postgate_dns_cache_hits_total", "Questions answered from the resolver's cache.", nil, nil)
	dnsQueries   = prometheus.NewDesc("postgate_dns_queries_total", "DNS messages sent to servers (every try, UDP or TCP).", nil, nil)
	dnsErrors    = prometheus.NewDesc("postgate_dns_errors_total", "DNS exchanges that ended in a temporary failure.", nil, nil)
	dnsTimeouts  = prometheus.NewDesc("postgate_dns_timeouts_total", "DNS exchanges whose last failure was a timeout.", nil, nil)
	dnsCached    = prometheus.NewDesc("postgate_dns_cache_entries", "Answers in the resolver's cache.", nil, nil)
)

type resolverCollector struct{ r *resolver.Resolver }

func (c resolverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dnsLookups, dnsCacheHits, dnsQueries, dnsErrors, dnsTimeouts, dnsCached} {
		ch <- d
	}
}

func (c resolverCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Stats()
	for d, v := range map[*prometheus.Desc]uint64{dnsLookups: st.Lookups, dnsCacheHits: st.CacheHits, dnsQueries: st.Queries,
		dnsErrors: st.Errors, dnsTimeouts: st.Timeouts} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(dnsCached, prometheus.GaugeValue, float64(st.CacheEntries))
}

// count makes every transport count its results into m.
func (d *delivery) count(m *metrics.Metrics) {
	for name, t := range d.opts.Transports {
		d.opts.Transports[name] = countingTransport{name: name, t: t, m: m}
	}
}

// countingTransport counts a transport's results by destination.
type countingTransport struct {
	name string
	t    queue.Transport
	m    *metrics.Metrics
}

func (c countingTransport) Deliver(ctx context.Context, dl *queue.Delivery) []queue.Result {
	start := time.Now()
	res := c.t.Deliver(ctx, dl)
	counts := map[string]int{}
	for i := range dl.Rcpts {
		status := queue.StatusDeferred // a missing result, as the queue manager takes it
		if i < len(res) && res[i].Status != 0 {
			status = res[i].Status
		}
		counts[status.String()]++
	}
	c.m.Delivery(c.name, dl.Nexthop, counts, time.Since(start))
	return res
}

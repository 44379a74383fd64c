package hub

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg           *prometheus.Registry
	searches      *prometheus.CounterVec
	searchSeconds prometheus.Histogram
	nodeAnswers   *prometheus.CounterVec
	refused       *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	httpSeconds   *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		searches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_hub_searches_total", Help: "Federated searches by outcome (ok, invalid, quota, audit: refused because the audit log cannot be written).",
		}, []string{"outcome"}),
		searchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mosaic_hub_search_seconds", Help: "Time of a federated search, from request to merged answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		nodeAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_hub_search_node_answers_total", Help: "Per-node outcomes of searches (answered, late, unreachable, error).",
		}, []string{"status"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_hub_node_messages_refused_total", Help: "Node messages refused, by reason.",
		}, []string{"reason"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_hub_disclosure_alerts_total", Help: "Attack patterns reported by nodes, by kind (differencing, complement, sweep, budget).",
		}, []string{"kind"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mosaic_hub_http_request_seconds", Help: "HTTP request latency by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "code"}),
	}
	m.reg.MustRegister(m.searches, m.searchSeconds, m.nodeAnswers, m.refused, m.alerts, m.httpSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

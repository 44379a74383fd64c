package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus metrics, on a registry of its own so
// that several nodes can live in one process (tests, the demo).
type metrics struct {
	reg             *prometheus.Registry
	objects         *prometheus.CounterVec
	bytes           *prometheus.CounterVec
	ingestSeconds   *prometheus.HistogramVec
	commitSeconds   prometheus.Histogram
	blobSyncSeconds prometheus.Histogram
	commitBatch     prometheus.Histogram
	httpSeconds     *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_node_ingest_objects_total", Help: "DICOM objects offered to the node, by ingest path and outcome.",
		}, []string{"path", "status"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mosaic_node_ingest_stored_bytes_total", Help: "Bytes of de-identified objects stored, by ingest path.",
		}, []string{"path"}),
		ingestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mosaic_node_ingest_seconds", Help: "Time from receiving an object to its durable outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"path"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mosaic_node_index_commit_seconds", Help: "Time of one batched commit: blob sync plus index transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		blobSyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mosaic_node_blob_sync_seconds", Help: "Time of one blob store sync, which makes a batch's objects durable before its index commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mosaic_node_index_commit_objects", Help: "Objects per batched index commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mosaic_node_http_request_seconds", Help: "HTTP request latency by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "code"}),
	}
	m.reg.MustRegister(m.objects, m.bytes, m.ingestSeconds, m.commitSeconds, m.blobSyncSeconds, m.commitBatch, m.httpSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe counts an object's final outcome, once per ticket: for a
// refused object as it is refused, else as its commit ends.
func (n *Node) observe(t *Ticket, o Outcome) {
	n.m.objects.WithLabelValues(t.path, o.Status).Inc()
	if o.Status == StatusStored {
		n.m.bytes.WithLabelValues(t.path).Add(float64(o.Size))
	}
	n.m.ingestSeconds.WithLabelValues(t.path).Observe(time.Since(t.t0).Seconds())
}

// Package obs holds the server's own Prometheus metrics, shared by every
// component so that each counts its work and its drops in one place.
package obs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the server's metrics, registered in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	// IngestEvents counts events acknowledged, by protocol.
	IngestEvents *prometheus.CounterVec
	// IngestBytes counts payload bytes received, by protocol.
	IngestBytes *prometheus.CounterVec
	// IngestErrors counts rejected input and failures, by protocol and reason.
	IngestErrors *prometheus.CounterVec
	// ReadEvents counts events served by reads, exports and tails, by route.
	ReadEvents *prometheus.CounterVec
	// TailClients is the number of connected live-tail clients.
	TailClients prometheus.Gauge
	// TailDisconnects counts tails ended by the server, by reason.
	TailDisconnects *prometheus.CounterVec
}

// New returns metrics registered in a fresh registry, with Go and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		IngestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_ingest_events_total", Help: "Events acknowledged to producers, by protocol."}, []string{"protocol"}),
		IngestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_ingest_bytes_total", Help: "Payload bytes received, by protocol."}, []string{"protocol"}),
		IngestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_ingest_errors_total", Help: "Rejected input and ingest failures, by protocol and reason."}, []string{"protocol", "reason"}),
		ReadEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_read_events_total", Help: "Events served to readers, by route."}, []string{"route"}),
		TailClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronostream_tail_clients", Help: "Connected live-tail clients."}),
		TailDisconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_tail_disconnects_total", Help: "Live tails ended by the server, by reason."}, []string{"reason"}),
	}
	reg.MustRegister(m.IngestEvents, m.IngestBytes, m.IngestErrors, m.ReadEvents, m.TailClients, m.TailDisconnects)
	return m
}

package sink

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the per-sink series on the server's registry, labelled by sink.
type Metrics struct {
	Delivered    *prometheus.CounterVec
	Skipped      *prometheus.CounterVec
	DeadLettered *prometheus.CounterVec
	Retries      *prometheus.CounterVec
	Batches      *prometheus.CounterVec
	Gaps         *prometheus.CounterVec
	LagEvents    *prometheus.GaugeVec
	LagSeconds   *prometheus.GaugeVec
	Cursor       *prometheus.GaugeVec
}

// NewMetrics registers the sink metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chronostream_sink_" + name, Help: help}, []string{"sink"})
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "chronostream_sink_" + name, Help: help}, []string{"sink"})
	}
	m := &Metrics{
		Delivered:    counter("delivered_events_total", "Events the destination accepted."),
		Skipped:      counter("skipped_events_total", "Events the sink accepted and sent nowhere by a rule of its own (the grafana sink's non-annotations)."),
		DeadLettered: counter("deadlettered_events_total", "Events the destination refused, stored in the sink's dead-letter story with the reason."),
		Retries:      counter("retries_total", "Deliveries of a batch that failed transiently and were retried."),
		Batches:      counter("batches_total", "Batches the destination accepted."),
		Gaps:         counter("gaps_total", "Ranges of events retention evicted before the sink delivered them."),
		LagEvents:    gauge("lag_events", "Events read from the log and not yet delivered, including the batch being retried (a lower bound while catching up)."),
		LagSeconds:   gauge("lag_seconds", "Seconds since the sink was last caught up with the log (0 when it is)."),
		Cursor:       gauge("cursor", "The sink's durable cursor: every event up to this seq is handled."),
	}
	if reg != nil {
		reg.MustRegister(m.Delivered, m.Skipped, m.DeadLettered, m.Retries, m.Batches, m.Gaps, m.LagEvents, m.LagSeconds, m.Cursor)
	}
	return m
}

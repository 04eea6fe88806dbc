package store

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	appendLatency  prometheus.Histogram
	eventsAppended prometheus.Counter
	blocksAppended prometheus.Counter
	bytesAppended  prometheus.Counter
	appendErrors   prometheus.Counter
	evictedEvents  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chronostream_store_append_seconds",
			Help:    "Time to store one block durably, from taking it off the queue to the log's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		eventsAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronostream_store_events_appended_total", Help: "Events stored durably in the log."}),
		blocksAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronostream_store_blocks_appended_total", Help: "Blocks (group commits) stored in the log."}),
		bytesAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronostream_store_bytes_appended_total", Help: "Encoded block bytes stored in the log."}),
		appendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronostream_store_append_errors_total", Help: "Blocks the log failed to store."}),
		evictedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronostream_store_evicted_events_total", Help: "Events removed by max_events retention."}),
	}
	if reg != nil {
		reg.MustRegister(m.appendLatency, m.eventsAppended, m.blocksAppended, m.bytesAppended, m.appendErrors, m.evictedEvents)
	}
	return m
}

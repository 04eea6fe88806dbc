package canary

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the canary's Prometheus metrics, labelled by protocol. They
// are registered on the registry the caller passes (the canary command
// serves it on --metrics-listen), never on a global one.
type metrics struct {
	sent       *prometheus.CounterVec
	acked      *prometheus.CounterVec
	resent     *prometheus.CounterVec
	received   *prometheus.CounterVec
	missing    *prometheus.GaugeVec
	duplicates *prometheus.CounterVec
	outOfOrder *prometheus.CounterVec
	tailMissed *prometheus.CounterVec
	abandoned  *prometheus.CounterVec
	errors     *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_sent_total", Help: "Canary events written (first attempt), by protocol."}, []string{"protocol"}),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_acked_total", Help: "Canary events the server acknowledged, by protocol."}, []string{"protocol"}),
		resent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_resent_total", Help: "Canary events written again after a failure whose outcome was unknown, by protocol."}, []string{"protocol"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_received_total", Help: "Distinct canary events read back, by protocol and path (tail: the live SSE tail; read: the read API sweep)."}, []string{"protocol", "via"}),
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chronostream_canary_missing_events", Help: "Acknowledged canary events the read sweep has not found a grace period after their acknowledgement, by protocol."}, []string{"protocol"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_duplicates_total", Help: "Extra copies of canary events in the log, by protocol; allowed=true when the canary resent the event (the protocol allows a duplicate then)."}, []string{"protocol", "allowed"}),
		outOfOrder: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_out_of_order_total", Help: "Canary events the tail delivered after a later event of the same story, by protocol."}, []string{"protocol"}),
		tailMissed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_tail_missed_total", Help: "Canary events the read sweep found but the live tail never delivered, by protocol."}, []string{"protocol"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_abandoned_total", Help: "Canary events given up on: refused by the server for good, or unacknowledged at exit, by protocol."}, []string{"protocol"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronostream_canary_errors_total", Help: "Failed writes, tails and reads, by protocol and operation."}, []string{"protocol", "op"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chronostream_canary_latency_seconds",
			Help:    "Time from writing a canary event to seeing it in the live tail, by protocol.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18), // 1 ms .. ~131 s: outages included
		}, []string{"protocol"}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.acked, m.resent, m.received, m.missing, m.duplicates,
		m.outOfOrder, m.tailMissed, m.abandoned, m.errors, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// quantiles estimates the p50 and p99 of a protocol's tail latency as the
// upper bounds of the histogram buckets they fall in (0 without samples).
func (c *Canary) quantiles(proto string) (p50, p99 time.Duration) {
	var m dto.Metric
	if err := c.m.latency.WithLabelValues(proto).(prometheus.Metric).Write(&m); err != nil {
		return 0, 0
	}
	h := m.GetHistogram()
	total := h.GetSampleCount()
	if total == 0 {
		return 0, 0
	}
	at := func(q float64) time.Duration {
		want := uint64(math.Ceil(q * float64(total)))
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() >= want {
				return time.Duration(b.GetUpperBound() * float64(time.Second))
			}
		}
		return time.Duration(math.Inf(1)) // above the last bucket
	}
	return at(0.50), at(0.99)
}

package metrics

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxLabelValues caps the distinct combinations of alert-fed label values
// (service, scenario) that one metric family keeps. Alert labels come from
// webhook senders: without a cap one webhook with a thousand services would
// add a thousand series to every such family, for as long as drguard runs.
const MaxLabelValues = 100

// OtherLabelValue stands for every label value beyond MaxLabelValues.
const OtherLabelValue = "other"

// labelCap admits the first max distinct combinations of a family's capped
// labels; later combinations are reported as OtherLabelValue and counted in
// drguard_metric_label_values_dropped_total. Admission never changes a
// value that was admitted or refused before, so increments and decrements
// of one gauge always land on the same series.
type labelCap struct {
	capped  []int // positions of the alert-fed labels
	max     int
	dropped prometheus.Counter

	mu   sync.Mutex
	seen map[string]struct{}
}

// newLabelCap caps the labels named in capped among a family's labels.
func newLabelCap(reg prometheus.Registerer, metric string, labels []string, capped ...string) *labelCap {
	c := &labelCap{max: MaxLabelValues, seen: map[string]struct{}{}, dropped: droppedCounter(reg).WithLabelValues(Namespace + "_" + metric)}
	for _, name := range capped {
		c.capped = append(c.capped, slices.Index(labels, name))
	}
	return c
}

// apply returns lvs, or a copy with the capped values replaced by
// OtherLabelValue when the family is full.
func (c *labelCap) apply(lvs []string) []string {
	var key strings.Builder
	for _, i := range c.capped {
		if i < len(lvs) {
			key.WriteString(lvs[i])
		}
		key.WriteByte(0xff)
	}
	k := key.String()
	c.mu.Lock()
	_, ok := c.seen[k]
	if !ok && len(c.seen) < c.max {
		c.seen[k], ok = struct{}{}, true
	}
	c.mu.Unlock()
	if ok {
		return lvs
	}
	c.dropped.Inc()
	out := slices.Clone(lvs)
	for _, i := range c.capped {
		if i < len(out) {
			out[i] = OtherLabelValue
		}
	}
	return out
}

// droppedCounter registers drguard_metric_label_values_dropped_total with
// reg, or returns the one already registered there: every capped family of
// one registry shares it.
func droppedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "metric_label_values_dropped_total",
		Help: "Observations whose alert-fed label values (service, scenario) were recorded as \"other\" because their metric already had " + "the maximum number of distinct values.",
	}, []string{"metric"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// CappedCounterVec is a CounterVec whose alert-fed labels are capped.
type CappedCounterVec struct {
	*prometheus.CounterVec
	cap *labelCap
}

// WithLabelValues returns the counter for lvs, or for "other" beyond the cap.
func (v *CappedCounterVec) WithLabelValues(lvs ...string) prometheus.Counter {
	return v.CounterVec.WithLabelValues(v.cap.apply(lvs)...)
}

// CappedGaugeVec is a GaugeVec whose alert-fed labels are capped.
type CappedGaugeVec struct {
	*prometheus.GaugeVec
	cap *labelCap
}

// WithLabelValues returns the gauge for lvs, or for "other" beyond the cap.
func (v *CappedGaugeVec) WithLabelValues(lvs ...string) prometheus.Gauge {
	return v.GaugeVec.WithLabelValues(v.cap.apply(lvs)...)
}

// CappedHistogramVec is a HistogramVec whose alert-fed labels are capped.
type CappedHistogramVec struct {
	*prometheus.HistogramVec
	cap *labelCap
}

// WithLabelValues returns the histogram for lvs, or for "other" beyond the cap.
func (v *CappedHistogramVec) WithLabelValues(lvs ...string) prometheus.Observer {
	return v.HistogramVec.WithLabelValues(v.cap.apply(lvs)...)
}

// cappedCounter builds a CappedCounterVec; capped names its alert-fed labels.
func cappedCounter(reg prometheus.Registerer, opts prometheus.CounterOpts, labels []string, capped ...string) *CappedCounterVec {
	return &CappedCounterVec{prometheus.NewCounterVec(opts, labels), newLabelCap(reg, opts.Name, labels, capped...)}
}

// cappedGauge builds a CappedGaugeVec; capped names its alert-fed labels.
func cappedGauge(reg prometheus.Registerer, opts prometheus.GaugeOpts, labels []string, capped ...string) *CappedGaugeVec {
	return &CappedGaugeVec{prometheus.NewGaugeVec(opts, labels), newLabelCap(reg, opts.Name, labels, capped...)}
}

// cappedHistogram builds a CappedHistogramVec; capped names its alert-fed labels.
func cappedHistogram(reg prometheus.Registerer, opts prometheus.HistogramOpts, labels []string, capped ...string) *CappedHistogramVec {
	return &CappedHistogramVec{prometheus.NewHistogramVec(opts, labels), newLabelCap(reg, opts.Name, labels, capped...)}
}

package telemetry

import dto "github.com/prometheus/client_model/go"

// Find adds up the series of metric in mfs whose labels include labels: a
// counter's value or a histogram's observation count, and a histogram's sum.
// For tests and tools that read a registry back.
func Find(mfs []*dto.MetricFamily, metric string, labels map[string]string) (count, sum float64) {
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			count += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return count, sum
}

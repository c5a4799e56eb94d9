package telemetry_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/telemetry"
)

func newHandler(t *testing.T, opts telemetry.Options) (*prometheus.Registry, client.MetricsHandler) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := telemetry.NewHandler(reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return reg, h
}

// series is one gathered sample: its family's type, and its value (the
// histogram's sample count for a timer).
type series struct {
	typ   dto.MetricType
	value float64
	sum   float64
}

// gather reads every series of reg by "name{k=v,...}" with sorted labels.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]series {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]series{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
			}
			s := series{typ: mf.GetType()}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value, s.sum = float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
			}
			out[mf.GetName()+"{"+strings.Join(pairs, ",")+"}"] = s
		}
	}
	return out
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name string
		emit func(h client.MetricsHandler)
		want map[string]series
	}{
		{
			name: "counter gets _total, tags become labels",
			emit: func(h client.MetricsHandler) {
				h.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(2)
			},
			want: map[string]series{"temporal_request_total{namespace=default}": {dto.MetricType_COUNTER, 2, 0}},
		},
		{
			name: "a name already ending in _total keeps it",
			emit: func(h client.MetricsHandler) {
				c := h.WithTags(map[string]string{"cluster": "local-a", "outcome": "succeeded"}).Counter("kfleet_operations_total")
				c.Inc(1)
				c.Inc(1)
			},
			want: map[string]series{"kfleet_operations_total{cluster=local-a,outcome=succeeded}": {dto.MetricType_COUNTER, 2, 0}},
		},
		{
			name: "timer is a histogram in seconds",
			emit: func(h client.MetricsHandler) {
				tm := h.WithTags(map[string]string{"cluster": "local-a"}).Timer("kfleet_gate_wait_seconds")
				tm.Record(1500 * time.Millisecond)
				tm.Record(500 * time.Millisecond)
				h.Timer("temporal_request_latency").Record(time.Second)
			},
			want: map[string]series{
				"kfleet_gate_wait_seconds{cluster=local-a}": {dto.MetricType_HISTOGRAM, 2, 2},
				"temporal_request_latency_seconds{}":        {dto.MetricType_HISTOGRAM, 1, 1},
			},
		},
		{
			name: "gauge keeps its name and its last value",
			emit: func(h client.MetricsHandler) {
				g := h.Gauge("temporal_num_pollers")
				g.Update(3)
				g.Update(5)
			},
			want: map[string]series{"temporal_num_pollers{}": {dto.MetricType_GAUGE, 5, 0}},
		},
		{
			name: "one name with different label sets",
			emit: func(h client.MetricsHandler) {
				ns := h.WithTags(map[string]string{"namespace": "default"})
				ns.Counter("temporal_request").Inc(1)
				ns.WithTags(map[string]string{"operation": "PollWorkflowTaskQueue"}).Counter("temporal_request").Inc(1)
				ns.WithTags(map[string]string{"operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(1)
			},
			want: map[string]series{
				"temporal_request_total{namespace=default}":                                  {dto.MetricType_COUNTER, 1, 0},
				"temporal_request_total{namespace=default,operation=PollWorkflowTaskQueue}":  {dto.MetricType_COUNTER, 1, 0},
				"temporal_request_total{namespace=default,operation=StartWorkflowExecution}": {dto.MetricType_COUNTER, 1, 0},
			},
		},
		{
			name: "later tags override, empty ones are dropped, keys are sanitized",
			emit: func(h client.MetricsHandler) {
				h.WithTags(map[string]string{"a": "1", "b": "2", "c": "3"}).
					WithTags(map[string]string{"a": "9", "b": "", "d-e": "4"}).
					Counter("x").Inc(1)
			},
			want: map[string]series{"x_total{a=9,c=3,d_e=4}": {dto.MetricType_COUNTER, 1, 0}},
		},
		{
			name: "tag order does not matter",
			emit: func(h client.MetricsHandler) {
				h.WithTags(map[string]string{"b": "2"}).WithTags(map[string]string{"a": "1"}).Counter("y").Inc(1)
				h.WithTags(map[string]string{"a": "1", "b": "2"}).Counter("y").Inc(1)
			},
			want: map[string]series{"y_total{a=1,b=2}": {dto.MetricType_COUNTER, 2, 0}},
		},
		{
			name: "a name keeps its first kind; a decrease is ignored",
			emit: func(h client.MetricsHandler) {
				h.Gauge("z").Update(1)
				h.Gauge("z_total").Update(7) // the counter z's exposed name
				h.Counter("z").Inc(1)
				h.Counter("w").Inc(2)
				h.Counter("w").Inc(-5)
				h.Gauge("w_total").Update(1) // the counter w's exposed name
				h.Gauge("v_seconds").Update(1)
				h.Timer("v").Record(time.Second) // the gauge v_seconds
			},
			want: map[string]series{
				"z{}":         {dto.MetricType_GAUGE, 1, 0},
				"z_total{}":   {dto.MetricType_GAUGE, 7, 0},
				"w_total{}":   {dto.MetricType_COUNTER, 2, 0},
				"v_seconds{}": {dto.MetricType_GAUGE, 1, 0},
			},
		},
		{
			name: "invalid names and values are made valid",
			emit: func(h client.MetricsHandler) {
				h.WithTags(map[string]string{"9lives": "a\xffb"}).Counter("kfleet.weird-name").Inc(1)
			},
			want: map[string]series{"kfleet_weird_name_total{_lives=a\uFFFDb}": {dto.MetricType_COUNTER, 1, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, h := newHandler(t, telemetry.Options{})
			tt.emit(h)
			got := gather(t, reg)
			if len(got) != len(tt.want) {
				t.Errorf("got %d series, want %d: %v", len(got), len(tt.want), got)
			}
			for k, w := range tt.want {
				if g, ok := got[k]; !ok {
					t.Errorf("no series %s in %v", k, got)
				} else if g != w {
					t.Errorf("%s = %+v, want %+v", k, g, w)
				}
			}
		})
	}
}

func TestHandlerHelpAndBuckets(t *testing.T) {
	reg, h := newHandler(t, telemetry.Options{
		Help:    map[string]string{"kfleet_operations_total": "Operations finished by a cluster entity."},
		Buckets: []float64{1, 10},
	})
	h.Counter("kfleet_operations_total").Inc(1)
	h.Timer("wait").Record(5 * time.Second)
	want := `
# HELP kfleet_operations_total Operations finished by a cluster entity.
# TYPE kfleet_operations_total counter
kfleet_operations_total 1
# HELP wait_seconds Temporal SDK metric wait_seconds.
# TYPE wait_seconds histogram
wait_seconds_bucket{le="1"} 0
wait_seconds_bucket{le="10"} 1
wait_seconds_bucket{le="+Inf"} 1
wait_seconds_sum 5
wait_seconds_count 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// The SDK emits from many goroutines at once; run with -race.
func TestHandlerConcurrent(t *testing.T) {
	reg, h := newHandler(t, telemetry.Options{})
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			tagged := h.WithTags(map[string]string{"worker": string(rune('a' + i%2))})
			for range 100 {
				tagged.Counter("c").Inc(1)
				tagged.Timer("t").Record(time.Millisecond)
			}
		}()
	}
	for range 8 {
		<-done
	}
	got := gather(t, reg)
	if got["c_total{worker=a}"].value+got["c_total{worker=b}"].value != 800 {
		t.Errorf("counts %v, want 800 in all", got)
	}
}

func TestServer(t *testing.T) {
	reg := telemetry.NewRegistry()
	h, err := telemetry.NewHandler(reg, telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.WithTags(map[string]string{"cluster": "local-a", "cause": "map-failed", "outcome": "recovered"}).Counter("kfleet_recoveries_total").Inc(1)
	srv, err := telemetry.Listen("127.0.0.1:0", reg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasSuffix(srv.URL(), telemetry.MetricsPath) {
		t.Errorf("URL %s does not end in %s", srv.URL(), telemetry.MetricsPath)
	}
	resp, err := http.Get(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s: %s", resp.Status, body)
	}
	for _, want := range []string{
		`kfleet_recoveries_total{cause="map-failed",cluster="local-a",outcome="recovered"} 1`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if _, err := telemetry.Listen(strings.TrimSuffix(strings.TrimPrefix(srv.URL(), "http://"), telemetry.MetricsPath), reg, zerolog.Nop()); err == nil {
		t.Error("Listen on a taken port: want an error")
	}
}

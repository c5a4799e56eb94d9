package chatops_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kfleet/kfleet/internal/chatops"
)

// BenchmarkVerify measures how many signed requests one server verifies
// per second through its handler: read, signature, timestamp, replay
// cache, form. The requests are full slash commands marked ssl_check=1
// (Slack's certificate check), which the server answers once verified and
// does nothing else with. They are signed ahead, in chunks, off the clock;
// the server's clock jumps past the replay window between chunks, so the
// cache works in its steady state: evicting as much as it records.
func BenchmarkVerify(b *testing.B) {
	var now atomic.Int64
	now.Store(1_700_000_000)
	srv, err := chatops.NewServer(chatops.Config{
		SigningSecret: []byte(testSecret),
		Policy:        mustPolicy(b, testPolicy),
		Backend:       newFakeBackend(),
		Now:           func() time.Time { return time.Unix(now.Load(), 0) },
	})
	if err != nil {
		b.Fatal(err)
	}
	handler := srv.Handler()
	const chunk = 4096
	reqs := make([]*http.Request, chunk)
	base := slashBody(alice, "COPS", "status local-a", "https://hooks.slack.com/commands/T0001/1/x") + "&ssl_check=1"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%chunk == 0 {
			b.StopTimer()
			ts := now.Add(int64((chatops.MaxClockSkew + time.Second) / time.Second))
			for j := range reqs {
				body := base + "&n=" + strconv.Itoa(i+j)
				r := httptest.NewRequest(http.MethodPost, chatops.PathCommands, strings.NewReader(body))
				r.Header.Set(chatops.HeaderTimestamp, strconv.FormatInt(ts, 10))
				r.Header.Set(chatops.HeaderSignature, chatops.Sign([]byte(testSecret), ts, []byte(body)))
				reqs[j] = r
			}
			b.StartTimer()
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, reqs[i%chunk])
		if w.Code != http.StatusOK {
			b.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkSlashCommandLatency measures how long Slack would wait for the
// answer to a signed `/kafka status local-a`, over real HTTP on loopback,
// through the whole handler (verify, parse, authorize, backend), with a
// backend that answers at once.
func BenchmarkSlashCommandLatency(b *testing.B) {
	h := newHarness(b, func(c *chatops.Config) { c.ReplayCacheSize = 1 << 22 })
	responseURL := h.slack.responseURL("bench")
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Unique, so no request is a replay of another.
		body := slashBody(carol, "CRANDOM", "status local-a", responseURL) + "&n=" + strconv.Itoa(i)
		req := request(b, h.url, chatops.PathCommands, body, testSecret, time.Now())
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		latencies = append(latencies, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("request %d: %s", i, resp.Status)
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(ms(percentile(latencies, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(latencies, 0.99)), "p99-ms")
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

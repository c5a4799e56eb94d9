package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/notify"
)

func TestFormat(t *testing.T) {
	assert.Equal(t,
		"<!here> :rotating_light: *[PAGE] disk 91% during cool-down*\ncluster `prod-a` · broker 3 · operation `cluster/prod-a/volume/3`\nthrottled wabash-58799 &lt;@U123&gt;",
		notify.Format(notify.Message{
			Cluster: "prod-a", Broker: 3, HasBroker: true, Severity: notify.SeverityPage,
			Title: "disk 91% during cool-down", Text: "throttled wabash-58799 <@U123>", Operation: "cluster/prod-a/volume/3",
		}))
	assert.Equal(t, ":warning: *[WARNING] cleaner dead*\ncluster `prod-a`",
		notify.Format(notify.Message{Cluster: "prod-a", Severity: notify.SeverityWarning, Title: "cleaner dead"}))
	assert.Equal(t, ":information_source: *[INFO] hello*", notify.Format(notify.Message{Title: "hello"}))
}

func TestWebhookPost(t *testing.T) {
	type got struct {
		method, contentType string
		payload             notify.Payload
	}
	posts := make(chan got, 1)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.Payload
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &p)
		posts <- got{r.Method, r.Header.Get("Content-Type"), p}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "invalid_payload")
	}))
	defer srv.Close()
	ctx := context.Background()
	secretURL := srv.URL + "/services/T000/B000/s3cr3t"
	w := &notify.Webhook{URL: secretURL}

	m := notify.Message{Cluster: "prod-a", Severity: notify.SeverityWarning, Title: "expanding volume"}
	require.NoError(t, w.Post(ctx, m))
	p := <-posts
	assert.Equal(t, http.MethodPost, p.method)
	assert.Equal(t, "application/json", p.contentType)
	assert.Equal(t, notify.Format(m), p.payload.Text)

	status = http.StatusBadRequest
	err := w.Post(ctx, m)
	<-posts
	require.Error(t, err)
	assert.Contains(t, err.Error(), "400")
	assert.Contains(t, err.Error(), "invalid_payload")
	assert.NotContains(t, err.Error(), "s3cr3t")

	// A slow endpoint is cut off by the client's timeout, and the error
	// does not leak the URL either.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	err = (&notify.Webhook{URL: slow.URL + "/s3cr3t", Client: &http.Client{Timeout: 100 * time.Millisecond}}).Post(ctx, m)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")

	// Nothing listens: an error without the URL.
	srv.Close()
	err = w.Post(ctx, m)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.False(t, strings.Contains(err.Error(), secretURL))

	assert.Error(t, (&notify.Webhook{}).Post(ctx, m))
}

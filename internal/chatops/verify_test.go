package chatops

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestVerify(t *testing.T) {
	secret := []byte("8f742231b10e8888abcd99yyyzzz85a5")
	body := []byte("command=%2Fkafka&text=status+local-a")
	base := time.Unix(1_700_000_000, 0)
	sign := func(ts int64, b []byte) http.Header {
		h := http.Header{}
		h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderSignature, Sign(secret, ts, b))
		return h
	}
	tests := []struct {
		name   string
		header func() http.Header
		want   error // nil: accepted
	}{
		{"signed now", func() http.Header { return sign(base.Unix(), body) }, nil},
		{"5 minutes old", func() http.Header { return sign(base.Add(-MaxClockSkew).Unix(), body) }, nil},
		{"5 minutes ahead", func() http.Header { return sign(base.Add(MaxClockSkew).Unix(), body) }, nil},
		{"5 minutes and a second old", func() http.Header { return sign(base.Add(-MaxClockSkew-time.Second).Unix(), body) }, errStale},
		{"5 minutes and a second ahead", func() http.Header { return sign(base.Add(MaxClockSkew+time.Second).Unix(), body) }, errStale},
		{"no headers", func() http.Header { return http.Header{} }, errUnsigned},
		{"signed sign", func() http.Header {
			h := sign(base.Unix(), body)
			h.Set(HeaderTimestamp, "+"+h.Get(HeaderTimestamp))
			return h
		}, errSignature},
		{"upper-case hex is another signature, not a bypass", func() http.Header {
			h := sign(base.Unix(), body)
			h.Set(HeaderSignature, "V0="+h.Get(HeaderSignature)[3:])
			return h
		}, errSignature},
		{"short signature", func() http.Header {
			h := sign(base.Unix(), body)
			h.Set(HeaderSignature, h.Get(HeaderSignature)[:20])
			return h
		}, errSignature},
		{"not hex", func() http.Header {
			h := sign(base.Unix(), body)
			s := h.Get(HeaderSignature)
			h.Set(HeaderSignature, s[:len(s)-1]+"g")
			return h
		}, errSignature},
		{"signed for another body", func() http.Header { return sign(base.Unix(), []byte("text=status+local-b")) }, errSignature},
		{"signed under another secret", func() http.Header {
			h := http.Header{}
			h.Set(HeaderTimestamp, strconv.FormatInt(base.Unix(), 10))
			h.Set(HeaderSignature, Sign([]byte("another-secret-of-32-characters!"), base.Unix(), body))
			return h
		}, errSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &verifier{secret: secret, now: (&clock{base}).now, seen: newReplayCache(10)}
			err := v.verify(tt.header(), body)
			if tt.want == nil {
				require.NoError(t, err)
				assert.ErrorIs(t, v.verify(tt.header(), body), errReplayed, "the same request again")
				return
			}
			assert.ErrorIs(t, err, tt.want)
			assert.Zero(t, v.seen.size(), "a refused request is not remembered")
		})
	}
}

func TestReplayCacheForgetsOnlyWhatExpired(t *testing.T) {
	c := newReplayCache(2)
	t0 := time.Unix(1_700_000_000, 0)
	a, b, d := [32]byte{1}, [32]byte{2}, [32]byte{3}
	require.NoError(t, c.add(a, t0.Add(MaxClockSkew), t0))
	// Out of order: b expires before a.
	require.NoError(t, c.add(b, t0.Add(time.Minute), t0))
	assert.ErrorIs(t, c.add(a, t0.Add(MaxClockSkew), t0), errReplayed)
	// Full of live entries: a new one is refused, not one forgotten.
	assert.ErrorIs(t, c.add(d, t0.Add(MaxClockSkew), t0.Add(time.Minute)), errBusy)
	assert.ErrorIs(t, c.add(b, t0.Add(time.Minute), t0.Add(time.Minute)), errReplayed, "b is still in its window")
	// Past b's expiry, b is forgotten and d fits; a is still refused.
	later := t0.Add(time.Minute + time.Second)
	require.NoError(t, c.add(d, t0.Add(2*MaxClockSkew), later))
	assert.ErrorIs(t, c.add(a, t0.Add(MaxClockSkew), later), errReplayed)
	assert.Equal(t, 2, c.size())
	// Past everything's expiry, the cache empties as it is used.
	require.NoError(t, c.add(b, t0.Add(3*MaxClockSkew), t0.Add(2*MaxClockSkew+time.Second)))
	assert.Equal(t, 1, c.size())
}

package chatops

import (
	"container/heap"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Slack's request signing, version v0.
const (
	// HeaderTimestamp carries the request's Unix time in seconds.
	HeaderTimestamp = "X-Slack-Request-Timestamp"
	// HeaderSignature carries "v0=" and the hex HMAC-SHA256 of
	// "v0:<timestamp>:<body>" under the signing secret.
	HeaderSignature = "X-Slack-Signature"
	// MaxClockSkew is how far a request's timestamp may be from the
	// server's clock, either way; it is also how long a signature is
	// remembered to refuse its replay.
	MaxClockSkew = 5 * time.Minute

	signaturePrefix = "v0="
)

// Why a request is refused before it is read.
var (
	errUnsigned  = errors.New("unsigned request: " + HeaderSignature + " and " + HeaderTimestamp + " are required")
	errSignature = errors.New("bad signature")
	errStale     = fmt.Errorf("request timestamp is more than %v off", MaxClockSkew)
	errReplayed  = errors.New("replayed request refused: this signed request was already received")
	// errBusy: the replay cache is full of signatures still in their
	// window. Forgetting one would let it be replayed, so new requests are
	// refused instead until some expire.
	errBusy = errors.New("too many requests: try again in a moment")
)

// Sign returns the X-Slack-Signature value of body sent at timestamp (Unix
// seconds) under secret, as Slack computes it. The server uses it to
// verify; tests and tools use it to sign.
func Sign(secret []byte, timestamp int64, body []byte) string {
	mac := computeMAC(secret, strconv.FormatInt(timestamp, 10), body)
	return signaturePrefix + hex.EncodeToString(mac[:])
}

func computeMAC(secret []byte, timestamp string, body []byte) [sha256.Size]byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("v0:"))
	h.Write([]byte(timestamp))
	h.Write([]byte(":"))
	h.Write(body)
	var mac [sha256.Size]byte
	h.Sum(mac[:0])
	return mac
}

// verifier checks requests' signatures and refuses replays.
type verifier struct {
	secret []byte
	now    func() time.Time
	seen   *replayCache
}

// verify checks a request's signature headers against its raw body, then
// records the signature so the same request is refused next time. The
// signature is checked before it is recorded: a forger cannot fill the
// cache.
func (v *verifier) verify(h http.Header, body []byte) error {
	ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return errUnsigned
	}
	// Digits only: ParseInt would take a sign, and a signature over
	// "+1700000000" is a different request from one over "1700000000".
	if len(ts) > 12 || !allDigits(ts) {
		return fmt.Errorf("%w: malformed timestamp", errSignature)
	}
	sec, _ := strconv.ParseInt(ts, 10, 64)
	sent, now := time.Unix(sec, 0), v.now()
	if skew := now.Sub(sent); skew > MaxClockSkew || skew < -MaxClockSkew {
		return errStale
	}
	var got [sha256.Size]byte
	if len(sig) != len(signaturePrefix)+2*len(got) || sig[:len(signaturePrefix)] != signaturePrefix {
		return fmt.Errorf("%w: want %s and %d hex digits", errSignature, signaturePrefix, 2*len(got))
	}
	if _, err := hex.Decode(got[:], []byte(sig[len(signaturePrefix):])); err != nil {
		return fmt.Errorf("%w: not hex", errSignature)
	}
	want := computeMAC(v.secret, ts, body)
	if !hmac.Equal(got[:], want[:]) {
		return errSignature
	}
	// The signature is replayable for as long as its timestamp is within
	// the window: until sent+MaxClockSkew.
	return v.seen.add(want, sent.Add(MaxClockSkew), now)
}

// replayCache remembers signatures until they expire, up to a bound.
type replayCache struct {
	mu      sync.Mutex
	max     int
	seen    map[[sha256.Size]byte]struct{}
	expires expiryHeap
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[[sha256.Size]byte]struct{})}
}

// add records mac until exp. It refuses a mac already recorded
// (errReplayed) and, when the cache is full of live entries, any new one
// (errBusy).
func (c *replayCache) add(mac [sha256.Size]byte, exp, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.expires) > 0 && c.expires[0].exp.Before(now) {
		delete(c.seen, heap.Pop(&c.expires).(expiry).mac)
	}
	if _, ok := c.seen[mac]; ok {
		return errReplayed
	}
	if len(c.seen) >= c.max {
		return errBusy
	}
	c.seen[mac] = struct{}{}
	heap.Push(&c.expires, expiry{mac: mac, exp: exp})
	return nil
}

func (c *replayCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type expiry struct {
	mac [sha256.Size]byte
	exp time.Time
}

// expiryHeap is a min-heap of expiries: timestamps may arrive out of order
// (up to MaxClockSkew either way), so a FIFO would not do.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

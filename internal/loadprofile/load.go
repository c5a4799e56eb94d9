package loadprofile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kfleet/kfleet/internal/fleet"
)

// tenantRun is one tenant's clients and what they saw in a round.
type tenantRun struct {
	t     Tenant
	topic string

	produced, acked, ackedBytes, produceErrs atomic.Int64
	consumed, distinct, consumeErrs          atomic.Int64
	throttles, throttleUs                    atomic.Int64
	producerDone                             atomic.Bool

	mu          sync.Mutex // the producer's callbacks
	lat         []time.Duration
	ackedSet    []bool
	first, last time.Time

	seen []bool // the consumer's goroutine only, read after it ended
}

// OnBrokerThrottle counts the throttles brokers ask of the tenant's
// clients (kgo.HookBrokerThrottle): the quota breaches as a client sees
// them, whatever the cluster.
func (tr *tenantRun) OnBrokerThrottle(_ kgo.BrokerMetadata, interval time.Duration, _ bool) {
	if interval > 0 {
		tr.throttles.Add(1)
		tr.throttleUs.Add(interval.Microseconds())
	}
}

var _ kgo.HookBrokerThrottle = (*tenantRun)(nil)

func (tr *tenantRun) client(opts ...kgo.Opt) (*kgo.Client, error) {
	c := tr.t.creds
	if c.Mechanism != fleet.TenantSASLMechanism {
		return nil, fmt.Errorf("tenant %s: mechanism %q: the harness speaks %s", tr.t.Name, c.Mechanism, fleet.TenantSASLMechanism)
	}
	base := []kgo.Opt{kgo.SeedBrokers(c.Bootstrap...), kgo.SASL(scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism()),
		kgo.WithHooks(tr), kgo.ClientID("kfleet-load-" + tr.t.Name)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: client: %w", tr.t.Name, err)
	}
	return cl, nil
}

// produce writes the tenant's records at its rate, acks=all and
// idempotent (franz-go's defaults, stated so they stay), and waits for
// every acknowledgement. Records are keyed by their sequence number,
// which the consumer reads back. Batches go uncompressed: the values are
// windows of one random buffer, which a compressor would shrink to
// nothing, and the quotas must count the bytes the profile asked for.
func (tr *tenantRun) produce(ctx context.Context, payload []byte, ready *sync.WaitGroup, begin <-chan struct{}) error {
	defer tr.producerDone.Store(true)
	cl, err := tr.client(kgo.DefaultProduceTopic(tr.topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		ready.Done()
		return err
	}
	defer cl.Close()
	// Logged in and the topic's metadata loaded before the clock starts:
	// with every tenant's clients connecting at once, SCRAM's key
	// derivation alone would otherwise be most of a short round's latency.
	err = cl.Ping(ctx)
	if err == nil {
		_, err = kadmTopic(ctx, cl, tr.topic)
	}
	ready.Done()
	if err != nil {
		return fmt.Errorf("tenant %s: connect: %w", tr.t.Name, err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-begin:
	}
	l := tr.t.Load
	sizes := l.RecordSizes()
	offsets := rand.New(rand.NewPCG(l.Seed, 2))
	start := time.Now()
	tr.mu.Lock()
	tr.first = start
	tr.mu.Unlock()
	for i := range l.Messages {
		if l.Rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / l.Rate * float64(time.Second)))); d > time.Millisecond {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
		key := binary.BigEndian.AppendUint64(nil, uint64(i))
		size := sizes()
		sent := time.Now()
		tr.produced.Add(1)
		off := offsets.IntN(len(payload) - size + 1)
		cl.Produce(ctx, &kgo.Record{Key: key, Value: payload[off : off+size]}, func(_ *kgo.Record, err error) {
			now := time.Now()
			if err != nil {
				tr.produceErrs.Add(1)
				return
			}
			tr.acked.Add(1)
			tr.ackedBytes.Add(int64(size))
			tr.mu.Lock()
			tr.lat = append(tr.lat, now.Sub(sent))
			tr.ackedSet[i] = true
			tr.last = now
			tr.mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("tenant %s: flush: %w", tr.t.Name, err)
	}
	return nil
}

// consume reads the tenant's topic from the start, without a group, until
// ctx ends, marking each sequence number seen.
func (tr *tenantRun) consume(ctx context.Context) error {
	cl, err := tr.client(kgo.ConsumeTopics(tr.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				tr.consumeErrs.Add(1)
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			tr.consumed.Add(1)
			if len(rec.Key) != 8 {
				return
			}
			if i := binary.BigEndian.Uint64(rec.Key); i < uint64(len(tr.seen)) && !tr.seen[i] {
				tr.seen[i] = true
				tr.distinct.Add(1)
			}
		})
	}
}

// caughtUp: the producer is done and the consumer has read as many
// distinct records as were acknowledged.
func (tr *tenantRun) caughtUp() bool {
	return tr.producerDone.Load() && tr.distinct.Load() >= tr.acked.Load()
}

// report reads the round's figures; called once both clients ended.
func (tr *tenantRun) report() (TenantReport, []time.Duration) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var lost int64
	for i, ok := range tr.ackedSet {
		if ok && !tr.seen[i] {
			lost++
		}
	}
	r := TenantReport{Tenant: tr.t.Name, Plan: tr.t.Load.Plan, Kind: tr.t.Load.Kind, Topic: tr.topic, Asked: tr.t.Load.Messages, Rate: tr.t.Load.Rate,
		Produced: tr.produced.Load(), Acked: tr.acked.Load(), AckedBytes: tr.ackedBytes.Load(), Consumed: tr.consumed.Load(), Lost: lost,
		ProduceErrors: tr.produceErrs.Load(), ConsumeErrors: tr.consumeErrs.Load(), Throttles: tr.throttles.Load(),
		ThrottleMs: tr.throttleUs.Load() / 1000}
	r.QuotaBreaches = r.Throttles
	if s := tr.last.Sub(tr.first).Seconds(); s > 0 {
		r.Seconds, r.MsgsPerSec, r.BytesPerSec = s, float64(r.Acked)/s, float64(r.AckedBytes)/s
	}
	lat := tr.lat
	r.Latency = LatencyOf(lat)
	return r, lat
}

// Load runs one round on tenants: each tenant's load to its round's
// topic, read back by its consumer; with offline, the Runner's broker is
// taken offline once half the records are acknowledged.
func (r *Runner) Load(ctx context.Context, p Profile, tenants []Tenant, round int, offline bool) (Report, error) {
	p = p.withDefaults()
	payload := make([]byte, 2*maxRecordBytes)
	rng := rand.New(rand.NewPCG(p.Seed, uint64(round)))
	for i := range payload {
		payload[i] = byte(rng.Uint32()) // incompressible, as real payloads mostly are
	}
	var before map[string]int64
	if r.Quotas != nil {
		var err error
		if before, err = r.Quotas.Throttled(ctx, r.Cluster); err != nil {
			return Report{}, fmt.Errorf("cluster %s: quota counts: %w", r.Cluster, err)
		}
	}
	runs := make([]*tenantRun, len(tenants))
	asked := 0
	for i, t := range tenants {
		runs[i] = &tenantRun{t: t, topic: topicName(t.Name, round), ackedSet: make([]bool, t.Load.Messages), seen: make([]bool, t.Load.Messages)}
		asked += t.Load.Messages
	}
	rep := Report{Cluster: r.Cluster, Profile: p, Round: round, Started: time.Now()}
	rep.Profile.Tenants, rep.Profile.Messages = len(tenants), asked
	r.logf("round %d: %d tenant(s), %d message(s)", round, len(tenants), asked)

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var offlineDone chan *OfflineReport
	if offline && r.Offline != nil {
		offlineDone = make(chan *OfflineReport, 1)
		go func() { offlineDone <- r.takeOffline(lctx, runs, asked) }()
	}
	var producers, consumers, ready sync.WaitGroup
	start := make(chan struct{})
	ready.Add(len(runs))
	perr := make([]error, len(runs))
	cancels := make([]context.CancelFunc, len(runs))
	for i, tr := range runs {
		cctx, ccancel := context.WithCancel(lctx)
		cancels[i] = ccancel
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			if err := tr.consume(cctx); err != nil {
				tr.consumeErrs.Add(1)
				r.logf("tenant %s: consumer: %v", tr.t.Name, err)
			}
		}()
		producers.Add(1)
		go func() {
			defer producers.Done()
			perr[i] = tr.produce(lctx, payload, &ready, start)
		}()
	}
	ready.Wait()
	rep.Started = time.Now()
	r.logf("round %d: every producer logged in, go", round)
	close(start)
	producers.Wait()
	r.logf("round %d: producers done in %.1f s", round, time.Since(rep.Started).Seconds())
	drain := r.Drain
	if drain <= 0 {
		drain = time.Minute
	}
	deadline := time.Now().Add(drain)
	for pending := len(runs); pending > 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
		pending = 0
		for i, tr := range runs {
			if tr.caughtUp() {
				cancels[i]()
			} else {
				pending++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range cancels {
		c()
	}
	consumers.Wait()

	lats := make([][]time.Duration, len(runs))
	var last time.Time
	for i, tr := range runs {
		tr.mu.Lock()
		last = maxTime(last, tr.last)
		tr.mu.Unlock()
		var t TenantReport
		t, lats[i] = tr.report()
		rep.Tenants = append(rep.Tenants, t)
	}
	if offlineDone != nil {
		rep.Offline = <-offlineDone
	}
	rep.Seconds = last.Sub(rep.Started).Seconds()
	if r.Quotas != nil {
		after, err := r.Quotas.Throttled(ctx, r.Cluster)
		if err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("quota counts after the round: %v", err))
		} else {
			for i, tr := range runs {
				rep.Tenants[i].QuotaBreaches = after[tr.t.User] - before[tr.t.User]
			}
		}
	}
	rep.Totals = total(rep.Tenants, lats, rep.Seconds)
	return rep, errors.Join(perr...)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// kadmTopic asks for the topic's metadata, so the producer knows its
// partitions' leaders before its first record.
func kadmTopic(ctx context.Context, cl *kgo.Client, topic string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	return req.RequestWith(ctx, cl)
}

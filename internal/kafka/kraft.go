package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The KRaft requests kadm lacks (DescribeQuorum, UnregisterBroker,
// DescribeCluster with fenced brokers) and the ones whose kadm helper drops
// what kfleet needs (UpdateFeatures: the broker's error message names the
// node that blocks a level), as kmsg requests. A broker forwards each to
// the active controller.

// metadataTopic is the KRaft metadata log, partition 0 of which the quorum
// replicates.
const metadataTopic = "__cluster_metadata"

// DescribeQuorum returns the metadata quorum: leader, epoch, high watermark
// and each voter's and observer's log end offset and fetch times
// (DescribeQuorum v2 where the cluster speaks it, v1 at least for the
// times).
func (a *Admin) DescribeQuorum(ctx context.Context) (fleet.Quorum, error) {
	resp, err := describeQuorumRequest().RequestWith(ctx, a.client)
	if err != nil {
		return fleet.Quorum{}, fmt.Errorf("cluster %s: describe quorum: %w", a.cluster, err)
	}
	return quorumOf(a.cluster, resp)
}

func quorumReplicas(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []fleet.QuorumReplica {
	out := make([]fleet.QuorumReplica, 0, len(rs))
	for _, r := range rs {
		out = append(out, fleet.QuorumReplica{
			ID:           r.ReplicaID,
			LogEndOffset: r.LogEndOffset,
			LastFetch:    millis(r.LastFetchTimestamp),
			LastCaughtUp: millis(r.LastCaughtUpTimestamp),
		})
	}
	return out
}

// millis turns Kafka's epoch milliseconds into a time, -1 (unknown) into
// the zero time.
func millis(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// BrokerFencing lists every registered broker with whether it is fenced
// (DescribeCluster v2 with IncludeFencedBrokers). A cluster that answers
// below v2 cannot say: that is an error, not "nobody is fenced".
func (a *Admin) BrokerFencing(ctx context.Context) ([]fleet.BrokerFencing, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: describe cluster: %w", a.cluster, err)
	}
	if err := errorWithMessage(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, fmt.Errorf("cluster %s: describe cluster: %w", a.cluster, err)
	}
	if resp.Version < 2 {
		return nil, fmt.Errorf("cluster %s: describe cluster: answered v%d, fencing needs v2 (Kafka 4.0 or later)", a.cluster, resp.Version)
	}
	out := make([]fleet.BrokerFencing, 0, len(resp.Brokers))
	for _, b := range resp.Brokers {
		out = append(out, fleet.BrokerFencing{ID: b.NodeID, Fenced: b.IsFenced})
	}
	slices.SortFunc(out, func(x, y fleet.BrokerFencing) int { return int(x.ID - y.ID) })
	return out, nil
}

// UnregisterBroker removes a node's registration from the cluster's
// metadata, e.g. a ghost that blocks a metadata.version update. A node not
// registered (already unregistered) is done, not an error, so a retried
// activity converges.
func (a *Admin) UnregisterBroker(ctx context.Context, node int32) error {
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = node
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return fmt.Errorf("cluster %s: unregister node %d: %w", a.cluster, node, err)
	}
	err = errorWithMessage(resp.ErrorCode, resp.ErrorMessage)
	if err != nil && !errors.Is(err, kerr.BrokerIDNotRegistered) {
		return fmt.Errorf("cluster %s: unregister node %d: %w", a.cluster, node, err)
	}
	return nil
}

// FeatureRefusedError is the cluster's refusal of a feature level, with the
// broker's message, which names the node that does not support the level.
// It matches fleet.ErrRefused (waiting or retrying does not help) and the
// kerr error (kerr.InvalidUpdateVersion, kerr.FeatureUpdateFailed).
type FeatureRefusedError struct {
	Cluster string
	Feature string
	Level   int16
	// Message is the broker's error message, "" when it sent none.
	Message string
	Err     *kerr.Error
}

func (e *FeatureRefusedError) Error() string {
	s := fmt.Sprintf("cluster %s: %s %d refused: %s", e.Cluster, e.Feature, e.Level, e.Err.Message)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap makes errors.Is match fleet.ErrRefused and the kerr error.
func (e *FeatureRefusedError) Unwrap() []error { return []error{fleet.ErrRefused, e.Err} }

// UpdateMetadataVersion finalizes metadata.version at level (an upgrade
// only: kfleet never downgrades it). validateOnly asks the controller
// whether it would accept the level without changing it. A level a
// registered node does not support comes back as a *FeatureRefusedError.
func (a *Admin) UpdateMetadataVersion(ctx context.Context, level int16, validateOnly bool) error {
	return a.updateFeature(ctx, fleet.MetadataVersionFeature, level, validateOnly)
}

func (a *Admin) updateFeature(ctx context.Context, feature string, level int16, validateOnly bool) error {
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = 30_000
	req.ValidateOnly = validateOnly
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature = feature
	u.MaxVersionLevel = level
	u.UpgradeType = 1 // upgrade only; v0 reads AllowDowngrade, false by default
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return fmt.Errorf("cluster %s: update %s to %d: %w", a.cluster, feature, level, err)
	}
	code, msg := resp.ErrorCode, resp.ErrorMessage
	// Before v2 a top-level success carries the outcome per feature.
	for _, r := range resp.Results {
		if code == 0 && r.Feature == feature {
			code, msg = r.ErrorCode, r.ErrorMessage
		}
	}
	if code == 0 {
		return nil
	}
	kerrErr, _ := kerr.ErrorForCode(code).(*kerr.Error)
	if kerrErr == kerr.InvalidUpdateVersion || kerrErr == kerr.FeatureUpdateFailed {
		m := ""
		if msg != nil {
			m = *msg
		}
		return &FeatureRefusedError{Cluster: a.cluster, Feature: feature, Level: level, Message: m, Err: kerrErr}
	}
	return fmt.Errorf("cluster %s: update %s to %d: %w", a.cluster, feature, level, errorWithMessage(code, msg))
}

// Features are the feature levels one node reports in ApiVersions.
type Features struct {
	Node int32 `json:"node"`
	// Finalized are the cluster's finalized levels as the node knows them
	// (a level 0 feature is absent), with the epoch they were finalized at.
	Finalized map[string]int16 `json:"finalized"`
	Epoch     int64            `json:"epoch"`
	// Supported is the range of levels the node's binaries support.
	Supported map[string]LevelRange `json:"supported"`
}

// LevelRange is a supported feature's lowest and highest level.
type LevelRange struct {
	Min int16 `json:"min"`
	Max int16 `json:"max"`
}

// NodeFeatures asks each broker in the client's metadata for its
// ApiVersions features. A broker that does not answer gets an entry in
// errs, not a failure of the whole call: a stopped or ghost broker is
// exactly what a finalize check must hear about.
func (a *Admin) NodeFeatures(ctx context.Context) (map[int32]Features, map[int32]error, error) {
	m, err := a.adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: broker metadata: %w", a.cluster, err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[int32]Features, len(m.Brokers))
	errs := make(map[int32]error)
	for _, id := range m.Brokers.NodeIDs() {
		wg.Go(func() {
			f, err := a.features(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[id] = err
				return
			}
			out[id] = f
		})
	}
	wg.Wait()
	return out, errs, nil
}

func (a *Admin) features(ctx context.Context, node int32) (Features, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName = "kfleet"
	req.ClientSoftwareVersion = "1"
	resp, err := req.RequestWith(ctx, a.client.Broker(int(node)))
	if err != nil {
		return Features{}, fmt.Errorf("cluster %s: api versions of node %d: %w", a.cluster, node, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return Features{}, fmt.Errorf("cluster %s: api versions of node %d: %w", a.cluster, node, err)
	}
	f := Features{Node: node, Epoch: resp.FinalizedFeaturesEpoch, Finalized: map[string]int16{}, Supported: map[string]LevelRange{}}
	for _, ff := range resp.FinalizedFeatures {
		f.Finalized[ff.Name] = ff.MaxVersionLevel
	}
	for _, sf := range resp.SupportedFeatures {
		f.Supported[sf.Name] = LevelRange{Min: sf.MinVersion, Max: sf.MaxVersion}
	}
	return f, nil
}

// MetadataVersionSupport gathers what CheckFinalize needs: the finalized
// metadata.version (the highest epoch's view among the brokers that
// answered) and each registered broker's support. Registered brokers come
// from DescribeCluster with fenced ones included, so a fenced ghost is
// listed (Known false) even though it cannot be asked. Controllers are not
// reachable through the brokers' listeners; the UpdateFeatures refusal
// names one that blocks. InSpec is left false: the caller knows the spec.
func (a *Admin) MetadataVersionSupport(ctx context.Context) (current int16, nodes []fleet.NodeSupport, err error) {
	registered, err := a.BrokerFencing(ctx)
	if err != nil {
		return 0, nil, err
	}
	feats, _, err := a.NodeFeatures(ctx)
	if err != nil {
		return 0, nil, err
	}
	epoch := int64(-1)
	for _, f := range feats {
		if f.Epoch > epoch {
			epoch, current = f.Epoch, f.Finalized[fleet.MetadataVersionFeature]
		}
	}
	for _, b := range registered {
		n := fleet.NodeSupport{ID: b.ID}
		if f, ok := feats[b.ID]; ok {
			if r, ok := f.Supported[fleet.MetadataVersionFeature]; ok {
				n.Known, n.MinLevel, n.MaxLevel = true, r.Min, r.Max
			}
		}
		nodes = append(nodes, n)
	}
	return current, nodes, nil
}

// errorWithMessage is the kerr error of code with the broker's message
// appended when it sent one; nil for code 0.
func errorWithMessage(code int16, msg *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil || msg == nil || *msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, *msg)
}

// DescribeQuorum returns the cluster's metadata quorum; see
// Admin.DescribeQuorum.
func (p *Pool) DescribeQuorum(ctx context.Context, spec fleet.ClusterSpec) (fleet.Quorum, error) {
	a, err := p.Admin(spec)
	if err != nil {
		return fleet.Quorum{}, err
	}
	return a.DescribeQuorum(ctx)
}

// BrokerFencing lists the cluster's registered brokers and whether each is
// fenced; see Admin.BrokerFencing.
func (p *Pool) BrokerFencing(ctx context.Context, spec fleet.ClusterSpec) ([]fleet.BrokerFencing, error) {
	a, err := p.Admin(spec)
	if err != nil {
		return nil, err
	}
	return a.BrokerFencing(ctx)
}

// UnregisterBroker removes a node's registration; see
// Admin.UnregisterBroker.
func (p *Pool) UnregisterBroker(ctx context.Context, spec fleet.ClusterSpec, node int32) error {
	a, err := p.Admin(spec)
	if err != nil {
		return err
	}
	return a.UnregisterBroker(ctx, node)
}

// UpdateMetadataVersion finalizes metadata.version; see
// Admin.UpdateMetadataVersion.
func (p *Pool) UpdateMetadataVersion(ctx context.Context, spec fleet.ClusterSpec, level int16, validateOnly bool) error {
	a, err := p.Admin(spec)
	if err != nil {
		return err
	}
	return a.UpdateMetadataVersion(ctx, level, validateOnly)
}

// MetadataVersionSupport returns the finalized metadata.version and each
// registered broker's support, InSpec set from spec; see
// Admin.MetadataVersionSupport.
func (p *Pool) MetadataVersionSupport(ctx context.Context, spec fleet.ClusterSpec) (int16, []fleet.NodeSupport, error) {
	a, err := p.Admin(spec)
	if err != nil {
		return 0, nil, err
	}
	current, nodes, err := a.MetadataVersionSupport(ctx)
	for i := range nodes {
		nodes[i].InSpec = spec.InSpec(nodes[i].ID)
	}
	return current, nodes, err
}

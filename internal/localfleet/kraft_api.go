package localfleet

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// The KRaft APIs kfake has none of, answered from the quorum model by the
// broker proxies (as a broker forwards them to the active controller) and
// by the controllers' listeners: DescribeQuorum, DescribeCluster v2 with
// fenced brokers and controller endpoints, UnregisterBroker, UpdateFeatures
// for metadata.version, and finalized/supported features in ApiVersions.

// featureMetadataVersion and featureKRaftVersion are the features' names.
const (
	featureMetadataVersion = "metadata.version"
	featureKRaftVersion    = "kraft.version"
)

// answerKRaft answers a broker proxy's request the model owns; ok is false
// for any other request (it goes to kfake as in ZooKeeper mode).
func (s *session) answerKRaft(req *request) (out []byte, ok bool, err error) {
	c := s.p.c
	switch kmsg.Key(req.key) {
	case kmsg.DescribeQuorum:
		out, err = c.answerDescribeQuorum(req, -1)
	case kmsg.UnregisterBroker:
		out, err = c.answerUnregisterBroker(req, s.who())
	case kmsg.UpdateFeatures:
		kreq, derr := req.decode()
		if derr != nil {
			return nil, true, derr
		}
		// Only metadata.version is the model's; kfake keeps the others.
		if !slices.ContainsFunc(kreq.(*kmsg.UpdateFeaturesRequest).FeatureUpdates,
			func(u kmsg.UpdateFeaturesRequestFeatureUpdate) bool { return u.Feature == featureMetadataVersion }) {
			return nil, false, nil
		}
		out, err = c.answerUpdateFeatures(req, s.who())
	default:
		return nil, false, nil
	}
	return out, true, err
}

// answerController answers a request to controller ctl's listener.
func (c *cluster) answerController(req *request, ctl int32) ([]byte, error) {
	switch kmsg.Key(req.key) {
	case kmsg.ApiVersions:
		return c.answerControllerApiVersions(req, ctl)
	case kmsg.DescribeQuorum:
		return c.answerDescribeQuorum(req, ctl)
	case kmsg.DescribeCluster:
		kreq, err := req.decode()
		if err != nil {
			return nil, err
		}
		resp := kreq.ResponseKind().(*kmsg.DescribeClusterResponse)
		c.describeClusterKRaft(kreq.(*kmsg.DescribeClusterRequest), resp)
		return req.encodeResponse(resp), nil
	case kmsg.UnregisterBroker:
		return c.answerUnregisterBroker(req, whoClient)
	case kmsg.UpdateFeatures:
		return c.answerUpdateFeatures(req, whoClient)
	}
	return nil, fmt.Errorf("controller %d does not serve %s", ctl, kmsg.NameForKey(req.key))
}

// controllerAPIs are the keys and versions a controller listener serves.
var controllerAPIs = [][3]int16{
	{int16(kmsg.ApiVersions), 0, 4},
	{int16(kmsg.UpdateFeatures), 0, 2},
	{int16(kmsg.DescribeQuorum), 0, 2},
	{int16(kmsg.DescribeCluster), 0, 2},
	{int16(kmsg.UnregisterBroker), 0, 0},
}

func (c *cluster) answerControllerApiVersions(req *request, ctl int32) ([]byte, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	for _, k := range controllerAPIs {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k[0], k[1], k[2]
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	if req.version > 4 {
		// As Kafka does: UNSUPPORTED_VERSION in v0 form, with the keys,
		// and the client retries with a version both know.
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		req.version = 0
		return req.encodeResponse(resp), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addFeaturesLocked(resp, c.quorum().model.Features(), c.controllerSupportLocked(ctl))
	return req.encodeResponse(resp), nil
}

// controllerSupportLocked is the metadata.version range controller id's
// binaries support. c.mu must be held.
func (c *cluster) controllerSupportLocked(id int32) kraft.Range {
	r, _ := kraft.SupportedBy(c.controllerByID(id).version)
	return r
}

// addFeaturesLocked puts metadata.version (supported by the node: r;
// finalized: f) and kraft.version into an ApiVersions response, replacing
// what kfake put there. c.mu must be held.
func (c *cluster) addFeaturesLocked(resp *kmsg.ApiVersionsResponse, f kraft.Features, r kraft.Range) {
	resp.SupportedFeatures = slices.DeleteFunc(resp.SupportedFeatures, func(sf kmsg.ApiVersionsResponseSupportedFeature) bool {
		return sf.Name == featureMetadataVersion || sf.Name == featureKRaftVersion
	})
	resp.FinalizedFeatures = slices.DeleteFunc(resp.FinalizedFeatures, func(ff kmsg.ApiVersionsResponseFinalizedFeature) bool {
		return ff.Name == featureMetadataVersion || ff.Name == featureKRaftVersion
	})
	mv := kmsg.NewApiVersionsResponseSupportedFeature()
	mv.Name, mv.MinVersion, mv.MaxVersion = featureMetadataVersion, r.Min, r.Max
	kv := kmsg.NewApiVersionsResponseSupportedFeature()
	kv.Name, kv.MinVersion, kv.MaxVersion = featureKRaftVersion, 0, 1
	resp.SupportedFeatures = append(resp.SupportedFeatures, mv, kv)
	fin := kmsg.NewApiVersionsResponseFinalizedFeature()
	fin.Name, fin.MinVersionLevel, fin.MaxVersionLevel = featureMetadataVersion, f.MetadataVersion, f.MetadataVersion
	resp.FinalizedFeatures = append(resp.FinalizedFeatures, fin)
	resp.FinalizedFeaturesEpoch = f.Epoch
}

// rewriteApiVersionsKRaft adds what a KRaft broker serves beyond kfake
// (DescribeQuorum, UnregisterBroker) and its features.
func (c *cluster) rewriteApiVersionsKRaft(r *kmsg.ApiVersionsResponse, broker int32) {
	for _, k := range [][3]int16{{int16(kmsg.DescribeQuorum), 0, 2}, {int16(kmsg.UnregisterBroker), 0, 0}} {
		if !slices.ContainsFunc(r.ApiKeys, func(ak kmsg.ApiVersionsResponseApiKey) bool { return ak.ApiKey == k[0] }) {
			ak := kmsg.NewApiVersionsResponseApiKey()
			ak.ApiKey, ak.MinVersion, ak.MaxVersion = k[0], k[1], k[2]
			r.ApiKeys = append(r.ApiKeys, ak)
		}
	}
	slices.SortFunc(r.ApiKeys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	c.mu.Lock()
	defer c.mu.Unlock()
	support := kraft.Range{Min: kraft.MinMetadataVersion, Max: c.quorum().model.Features().MetadataVersion}
	if reg, ok := c.quorum().model.Broker(broker); ok {
		support = reg.Support
	} else if b := c.brokerByID(broker); b != nil {
		if r, ok := kraft.SupportedBy(b.version); ok {
			support = r
		}
	}
	c.addFeaturesLocked(r, c.quorum().model.Features(), support)
}

// millis is t in Unix milliseconds, -1 for "unknown" as Kafka reports it.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

// answerDescribeQuorum answers DescribeQuorum for __cluster_metadata-0.
// ctl is the controller asked (-1: a broker, which forwards to the active
// controller); a controller that is not the leader answers
// NOT_LEADER_OR_FOLLOWER, as Kafka's do.
func (c *cluster) answerDescribeQuorum(req *request, ctl int32) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.DescribeQuorumRequest)
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.quorum().model
	leader, epoch := m.Leader()
	for _, t := range r.Topics {
		rt := kmsg.NewDescribeQuorumResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeQuorumResponseTopicPartition()
			rp.Partition, rp.LeaderID, rp.LeaderEpoch = p.Partition, leader, epoch
			switch {
			case t.Topic != kraftClusterMetadata || p.Partition != 0:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case leader == kraft.NoLeader || (ctl >= 0 && ctl != leader):
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				c.fillQuorumLocked(&rp)
			}
			if rp.ErrorCode != 0 && r.Version >= 2 {
				msg := kerr.ErrorForCode(rp.ErrorCode).Error()
				rp.ErrorMessage = &msg
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for _, ctl := range c.quorum().controllers {
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = ctl.id
		l := kmsg.NewDescribeQuorumResponseNodeListener()
		l.Name, l.Host, l.Port = kraftControllerListener, proxyHost, uint16(ctl.listener.port())
		n.Listeners = append(n.Listeners, l)
		resp.Nodes = append(resp.Nodes, n)
	}
	return req.encodeResponse(resp), nil
}

// fillQuorumLocked fills the leader's view: high watermark, voters and
// observers (the live registered brokers, which fetch the metadata log).
// c.mu must be held.
func (c *cluster) fillQuorumLocked(rp *kmsg.DescribeQuorumResponseTopicPartition) {
	m := c.quorum().model
	rp.HighWatermark = m.HighWatermark()
	var leo int64
	for _, v := range m.Voters() {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset = v.ID, v.LogEndOffset
		rs.ReplicaDirectoryID = directoryID(c.id, v.ID)
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = millis(v.LastFetch), millis(v.LastCaughtUp)
		rp.CurrentVoters = append(rp.CurrentVoters, rs)
		if v.ID == rp.LeaderID {
			leo = v.LogEndOffset
		}
	}
	for _, b := range m.Brokers() {
		if !b.Alive {
			continue // a gone broker stops fetching; the leader forgets it
		}
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset = b.ID, leo
		rs.ReplicaDirectoryID = directoryID(c.id, b.ID)
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = millis(b.LastHeartbeat), millis(b.LastHeartbeat)
		rp.Observers = append(rp.Observers, rs)
	}
}

// directoryID is a node's stable log directory id (v2's
// ReplicaDirectoryID): the same across restarts, distinct per node.
func directoryID(cluster string, node int32) [16]byte {
	var id [16]byte
	copy(id[:], cluster)
	id[12], id[13], id[14], id[15] = byte(node>>24), byte(node>>16), byte(node>>8), byte(node)
	id[11] = 0x4b // never all zero (Kafka's "no directory")
	return id
}

// describeClusterKRaft fills a DescribeCluster response from the model:
// endpoint type 2 lists the controllers with the active one as
// ControllerID; otherwise the brokers, fenced ones only with
// IncludeFencedBrokers (v2), each with IsFenced.
func (c *cluster) describeClusterKRaft(req *kmsg.DescribeClusterRequest, r *kmsg.DescribeClusterResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.ClusterID = c.quorum().clusterID
	r.Brokers = r.Brokers[:0]
	r.EndpointType = req.EndpointType
	if req.EndpointType == 2 {
		r.ControllerID, _ = c.quorum().model.Leader()
		for _, ctl := range c.quorum().controllers {
			if ctl.state == StateRunning {
				db := kmsg.NewDescribeClusterResponseBroker()
				db.NodeID, db.Host, db.Port = ctl.id, proxyHost, int32(ctl.listener.port())
				r.Brokers = append(r.Brokers, db)
			}
		}
		return
	}
	// A KRaft broker names a live broker as the controller: clients
	// cannot reach controllers, and brokers forward to the active one.
	r.ControllerID = c.controller
	for _, reg := range c.quorum().model.Brokers() {
		if reg.Fenced && !req.IncludeFencedBrokers {
			continue
		}
		b := c.brokerByID(reg.ID)
		if b == nil {
			// A ghost (kraft_ghost.go) is listed with the endpoint it
			// registered, where nothing listens any more.
			if port, ok := c.ghostPortLocked(reg.ID); ok {
				db := kmsg.NewDescribeClusterResponseBroker()
				db.NodeID, db.Host, db.Port, db.IsFenced = reg.ID, proxyHost, int32(port), reg.Fenced
				r.Brokers = append(r.Brokers, db)
			}
			continue
		}
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack, db.IsFenced = b.id, proxyHost, int32(b.proxy.port()), b.rackPtr(), reg.Fenced
		r.Brokers = append(r.Brokers, db)
	}
}

func (c *cluster) answerUnregisterBroker(req *request, who string) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.UnregisterBrokerRequest)
	resp := r.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	ev, err := c.quorum().model.Unregister(r.BrokerID, time.Now())
	if err != nil {
		code := kerr.BrokerIDNotRegistered.Code
		if errors.Is(err, kraft.ErrNoLeader) {
			code = kerr.NotController.Code
		}
		msg := fmt.Sprintf("cluster %s: %v", c.id, err)
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		return req.encodeResponse(resp), nil
	}
	c.auditKRaftLocked(ev, who)
	return req.encodeResponse(resp), nil
}

// answerUpdateFeatures applies metadata.version updates through the model.
// A request that also names other features is refused as a whole, as
// Kafka applies a request's updates all or none (the model keeps only
// metadata.version; sent on their own, the others reach kfake's).
func (c *cluster) answerUpdateFeatures(req *request, who string) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.UpdateFeaturesRequest)
	resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	mixed := slices.ContainsFunc(r.FeatureUpdates, func(u kmsg.UpdateFeaturesRequestFeatureUpdate) bool { return u.Feature != featureMetadataVersion })
	for _, u := range r.FeatureUpdates {
		res := kmsg.NewUpdateFeaturesResponseResult()
		res.Feature = u.Feature
		var msg string
		if mixed {
			res.ErrorCode = kerr.InvalidUpdateVersion.Code
			msg = fmt.Sprintf("cluster %s: the local fleet updates metadata.version only on its own, not with other features (%s)", c.id, u.Feature)
		} else {
			up := kraft.Update{Level: u.MaxVersionLevel, ValidateOnly: r.ValidateOnly,
				AllowDowngrade: (r.Version == 0 && u.AllowDowngrade) || (r.Version >= 1 && u.UpgradeType >= 2)}
			ev, err := c.quorum().model.UpdateMetadataVersion(up, time.Now())
			switch {
			case errors.Is(err, kraft.ErrNoLeader):
				res.ErrorCode, msg = kerr.NotController.Code, fmt.Sprintf("cluster %s: %v", c.id, err)
			case err != nil:
				res.ErrorCode, msg = kerr.InvalidUpdateVersion.Code, fmt.Sprintf("cluster %s: %v", c.id, err)
			case ev != nil:
				c.auditKRaftLocked(*ev, who)
			}
		}
		if msg != "" {
			res.ErrorMessage = &msg
			if resp.ErrorCode == 0 && r.Version >= 2 {
				resp.ErrorCode, resp.ErrorMessage = res.ErrorCode, &msg
			}
		}
		resp.Results = append(resp.Results, res)
	}
	if r.Version >= 2 {
		resp.Results = nil
	}
	return req.encodeResponse(resp), nil
}

package kafka

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kfleet/kfleet/internal/fleet"
)

// BytesBehind is what broker's replicas of behind (partitions where it is
// out of the ISR) still have to copy: each leader's log size less the
// broker's, as DescribeLogDirs reports them (a follower's log only grows as
// it fetches, so the difference is what is left to fetch). A broker whose
// own log directories cannot be read yet counts as holding nothing; a
// partition without a leader has nothing to copy from and is not counted.
func (a *Admin) BytesBehind(ctx context.Context, broker int32, behind []fleet.Partition) (int64, error) {
	byLeader := map[int32]kadm.TopicsSet{}
	all := kadm.TopicsSet{}
	for _, p := range behind {
		if p.Leader < 0 || p.Leader == broker {
			continue
		}
		set := byLeader[p.Leader]
		if set == nil {
			set = kadm.TopicsSet{}
		}
		set.Add(p.Topic, p.Partition)
		byLeader[p.Leader] = set
		all.Add(p.Topic, p.Partition)
	}
	if len(all) == 0 {
		return 0, nil
	}
	leaderSize := map[string]map[int32]int64{}
	for _, leader := range slices.Sorted(maps.Keys(byLeader)) {
		dirs, err := a.adm.DescribeBrokerLogDirs(ctx, leader, byLeader[leader])
		if err != nil {
			return 0, fmt.Errorf("cluster %s: log dirs of leader %d: %w", a.cluster, leader, err)
		}
		for t, ps := range byLeader[leader] {
			for p := range ps {
				if leaderSize[t] == nil {
					leaderSize[t] = map[int32]int64{}
				}
				leaderSize[t][p] = sizeIn(dirs, t, p)
			}
		}
	}
	// The broker's own sizes; unreadable (its listener not up yet): it
	// holds nothing as far as anyone can tell.
	own, _ := a.adm.DescribeBrokerLogDirs(ctx, broker, all)
	var total int64
	for t, ps := range leaderSize {
		for p, size := range ps {
			total += max(0, size-sizeIn(own, t, p))
		}
	}
	return total, nil
}

// sizeIn is a partition's size in whichever of a broker's log directories
// holds it; 0 when none does.
func sizeIn(dirs kadm.DescribedLogDirs, topic string, partition int32) int64 {
	for _, d := range dirs {
		if d.Err != nil {
			continue
		}
		if p, ok := d.Topics.Lookup(topic, partition); ok {
			return p.Size
		}
	}
	return 0
}

// BytesBehind is Admin.BytesBehind on the cluster's pooled connection.
func (p *Pool) BytesBehind(ctx context.Context, spec fleet.ClusterSpec, broker int32, behind []fleet.Partition) (int64, error) {
	a, err := p.Admin(spec)
	if err != nil {
		return 0, err
	}
	return a.BytesBehind(ctx, broker, behind)
}

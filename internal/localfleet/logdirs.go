package localfleet

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// logDir is the one data directory every simulated broker has, on the
// data volume mounted at DataMountpoint.
const logDir = DataMountpoint + "/data"

// recordProduced accounts what a produce request writes: the partition's
// log grows on every in-sync replica, and every replica that is out of the
// ISR (stopped, or still catching up) falls that much further behind, which
// is what its catch-up time grows with. Request bytes stand in for log
// bytes: close enough for a model, and it needs no decompression.
func (c *cluster) recordProduced(r *kmsg.ProduceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range r.Topics {
		topic := t.Topic
		if r.Version >= 13 {
			topic = c.topicNameLocked(t.TopicID)
		}
		for _, rp := range t.Partitions {
			p := c.partitionLocked(topic, rp.Partition)
			if p == nil {
				continue
			}
			n := int64(len(rp.Records))
			p.bytes += n
			for _, id := range p.replicas {
				// An adding replica's copy goes on to the log end
				// (reassign_copy.go): it does not fall behind.
				if b := c.brokerByID(id); b != nil && !p.inSync(id) && !c.copyingLocked(p, id) {
					b.fellBehind(p, n)
				}
			}
		}
	}
}

// topicNameLocked resolves a topic id (Produce v13+ names topics by id).
func (c *cluster) topicNameLocked(id [16]byte) string {
	for name, t := range c.topics {
		if t.id == id {
			return name
		}
	}
	return ""
}

func (p *partition) inSync(id int32) bool {
	for _, r := range p.isr {
		if r == id {
			return true
		}
	}
	return false
}

// answerDescribeLogDirs answers from the model for the broker the request
// reached: only the replicas that broker hosts, with their sizes, and its
// volume's total and usable bytes when the fleet knows them.
func (c *cluster) answerDescribeLogDirs(req *request, broker int32) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	want := func(topic string, id int32) bool {
		if r.Topics == nil {
			return true
		}
		for _, t := range r.Topics {
			if t.Topic != topic {
				continue
			}
			for _, p := range t.Partitions {
				if p == id {
					return true
				}
			}
		}
		return false
	}

	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = logDir
	dir.TotalBytes, dir.UsableBytes = -1, -1
	c.mu.Lock()
	if b := c.brokerByID(broker); b != nil {
		if size, used, ok := c.hosts.usage(b.instanceID); ok {
			dir.TotalBytes, dir.UsableBytes = size, max(size-used, 0)
		}
	}
	for _, p := range c.partitionsLocked() {
		if !p.hostedOn(broker) || !want(p.topic, p.id) {
			continue
		}
		if n := len(dir.Topics); n == 0 || dir.Topics[n-1].Topic != p.topic {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = p.topic
			dir.Topics = append(dir.Topics, t)
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition, dp.Size = p.id, p.bytes
		if !p.inSync(broker) {
			// A replica out of sync holds less than the leader: what
			// it has not copied yet.
			dp.OffsetLag = 1
			if copied, ok := c.copiedLocked(p, broker); ok {
				dp.Size = copied // an adding replica, copying (reassign_copy.go)
			} else if b := c.brokerByID(broker); b != nil {
				dp.Size = max(0, p.bytes-b.toCopyLocked(p, time.Now()))
			}
		}
		t := &dir.Topics[len(dir.Topics)-1]
		t.Partitions = append(t.Partitions, dp)
	}
	c.mu.Unlock()
	resp.Dirs = append(resp.Dirs, dir)
	return req.encodeResponse(resp), nil
}

func (p *partition) hostedOn(id int32) bool {
	for _, r := range p.replicas {
		if r == id {
			return true
		}
	}
	return false
}

package localfleet

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAssignReplicas(t *testing.T) {
	leaders := map[int32]int{}
	for p := range int32(6) {
		r := assignReplicas("events", p, 3, []int32{1, 2, 3})
		assert.Len(t, r, 3)
		assert.ElementsMatch(t, []int32{1, 2, 3}, r, "partition %d", p)
		assert.Equal(t, r, assignReplicas("events", p, 3, []int32{1, 2, 3}), "deterministic")
		leaders[r[0]]++
	}
	assert.Equal(t, map[int32]int{1: 2, 2: 2, 3: 2}, leaders, "preferred leaders spread evenly")
	assert.Len(t, assignReplicas("events", 0, 5, []int32{1, 2, 3}), 3, "RF capped at the broker count")
}

func TestRackAwarePlacement(t *testing.T) {
	racks := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	var brokers []*broker
	rackOf := map[int32]string{}
	for id := int32(1); id <= 6; id++ {
		// Racks assigned out of id order, to prove placement reads racks.
		r := racks[(id*2)%3]
		brokers = append(brokers, &broker{id: id, rack: r})
		rackOf[id] = r
	}
	order := rackAlternated(brokers)
	assert.ElementsMatch(t, []int32{1, 2, 3, 4, 5, 6}, order)
	for p := range int32(12) {
		seen := map[string]bool{}
		for _, r := range assignReplicas("orders", p, 3, order) {
			assert.False(t, seen[rackOf[r]], "partition %d has two replicas in rack %s", p, rackOf[r])
			seen[rackOf[r]] = true
		}
	}
}

func TestInstanceID(t *testing.T) {
	id := instanceID("local-a", 1)
	assert.Regexp(t, regexp.MustCompile(`^i-[0-9a-f]{17}$`), id)
	assert.Equal(t, id, instanceID("local-a", 1))
	assert.NotEqual(t, id, instanceID("local-a", 2))
	assert.NotEqual(t, id, instanceID("local-b", 1))
}

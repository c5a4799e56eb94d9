package localfleet

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAssignReplicas(t *testing.T) {
	leaders := map[int32]int{}
	for p := range int32(6) {
		r := assignReplicas("events", p, 3, 3)
		assert.Len(t, r, 3)
		assert.ElementsMatch(t, []int32{1, 2, 3}, r, "partition %d", p)
		assert.Equal(t, r, assignReplicas("events", p, 3, 3), "deterministic")
		leaders[r[0]]++
	}
	assert.Equal(t, map[int32]int{1: 2, 2: 2, 3: 2}, leaders, "preferred leaders spread evenly")
	assert.Len(t, assignReplicas("events", 0, 5, 3), 3, "RF capped at the broker count")
}

func TestInstanceID(t *testing.T) {
	id := instanceID("local-a", 1)
	assert.Regexp(t, regexp.MustCompile(`^i-[0-9a-f]{17}$`), id)
	assert.Equal(t, id, instanceID("local-a", 1))
	assert.NotEqual(t, id, instanceID("local-a", 2))
	assert.NotEqual(t, id, instanceID("local-b", 1))
}

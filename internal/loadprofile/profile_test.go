package loadprofile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadAssignMix(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		p                             Profile
		tiny, large, over, random     int
		wantErr                       string
		randomMessagesMin, randomMost int
	}{
		{name: "the issue's 50 tenants", p: NewProfile(50, 1_000_000, 14), tiny: 5, large: 10, over: 1, random: 34,
			randomMessagesMin: 29_386, randomMost: 29_387},
		{name: "the test's 10 tenants", p: NewProfile(10, 50_000, 14), tiny: 1, large: 2, over: 1, random: 6,
			randomMessagesMin: 8_270, randomMost: 8_271},
		{name: "small runs keep every kind", p: NewProfile(3, 1_000, 1), tiny: 1, large: 1, over: 1, random: 0},
		{name: "no over-quota tenant", p: Profile{Tenants: 20, Messages: 10_000}, tiny: 2, large: 4, random: 14,
			randomMessagesMin: 697, randomMost: 698},
		{name: "too few messages for the mix", p: NewProfile(10, 300, 1), wantErr: "300 messages"},
		{name: "no tenants", p: NewProfile(0, 300, 1), wantErr: "0 tenants"},
		{name: "a mix over 100%", p: Profile{Tenants: 10, Messages: 10_000, TinyPercent: 60, LargePercent: 50}, wantErr: "at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loads, err := Assign(tc.p)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, loads, tc.p.Tenants)
			kinds := map[Kind]int{}
			total := 0
			for i, l := range loads {
				assert.Equal(t, i, l.Index)
				kinds[l.Kind]++
				total += l.Messages
				assert.LessOrEqual(t, l.MaxBytes, maxRecordBytes, "a record a broker takes by default")
				switch l.Kind {
				case KindTiny:
					assert.Equal(t, "basic-0", l.Plan)
					assert.LessOrEqual(t, l.MaxBytes, 128)
				case KindLarge:
					assert.GreaterOrEqual(t, l.MinBytes, 256<<10)
					assert.LessOrEqual(t, l.Rate, 5.0, "large records at a slow rate")
				case KindOverQuota:
					assert.Zero(t, l.Rate, "as fast as the client goes")
				case KindRandom:
					assert.GreaterOrEqual(t, l.Messages, tc.randomMessagesMin)
					assert.LessOrEqual(t, l.Messages, tc.randomMost)
					assert.Positive(t, l.Rate)
				}
			}
			want := map[Kind]int{}
			for k, n := range map[Kind]int{KindTiny: tc.tiny, KindLarge: tc.large, KindOverQuota: tc.over, KindRandom: tc.random} {
				if n > 0 {
					want[k] = n
				}
			}
			assert.Equal(t, want, kinds)
			if tc.random > 0 {
				assert.Equal(t, tc.p.Messages, total, "the random tenants take what the fixed kinds leave")
			}
		})
	}
}

func TestLoadAssignIsDeterministic(t *testing.T) {
	a, err := Assign(NewProfile(50, 1_000_000, 7))
	require.NoError(t, err)
	b, err := Assign(NewProfile(50, 1_000_000, 7))
	require.NoError(t, err)
	assert.Equal(t, a, b, "the same seed, the same loads")
	c, err := Assign(NewProfile(50, 1_000_000, 8))
	require.NoError(t, err)
	assert.NotEqual(t, a, c, "another seed deals another mix")

	// And each tenant's record sizes replay.
	s1, s2 := a[0].RecordSizes(), a[0].RecordSizes()
	for range 100 {
		v := s1()
		require.Equal(t, v, s2())
		require.GreaterOrEqual(t, v, a[0].MinBytes)
		require.LessOrEqual(t, v, a[0].MaxBytes)
	}
}

func TestLoadPlansSpread(t *testing.T) {
	p := NewProfile(20, 100_000, 3)
	p.Plans.Random = []string{"basic-0", "basic-1"}
	loads, err := Assign(p)
	require.NoError(t, err)
	plans := map[string]int{}
	for _, l := range loads {
		if l.Kind == KindRandom {
			plans[l.Plan]++
		}
	}
	assert.Equal(t, map[string]int{"basic-0": 7, "basic-1": 6}, plans, "random tenants take the plans in turn")
}

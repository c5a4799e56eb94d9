package localfleet

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSCRAMClientFirstUser(t *testing.T) {
	tests := []struct {
		name, msg string
		user      string
		ok        bool
	}{
		{"plain", "n,,n=wabash-58799,r=fyko+d2lbbFgONRv9qkxdawL", "wabash-58799", true},
		{"with authzid", "n,a=admin,n=admin,r=3rfcNHYJY1ZVvWVs7j", "admin", true},
		{"channel binding supported but not used", "y,,n=user,r=abc", "user", true},
		{"escaped name", "n,,n=a=2Cb=3Dc,r=abc", "a,b=c", true},
		{"client-final message", "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "", false},
		{"no user", "n,,r=abc,x=y", "", false},
		{"not SCRAM", "\x00user\x00secret", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, ok := scramClientFirstUser([]byte(tt.msg))
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.user, user)
		})
	}
}

func TestQuotaBytes(t *testing.T) {
	tests := []struct {
		in   float64
		want int64
	}{
		{1048576, 1048576},
		{262143.9999999, 262144}, // a whole number that lost precision on the way
		{0.5, 0},
		{-1, 0},
		{math.NaN(), 0},
		{math.MaxInt64, math.MaxInt64}, // Kafka's "no quota" default, Long.MAX_VALUE
		{math.Inf(1), math.MaxInt64},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, quotaBytes(tt.in), "%g", tt.in)
	}
}

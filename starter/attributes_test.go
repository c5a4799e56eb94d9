package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
)

func TestAttributeTypesFollowTheWorkflows(t *testing.T) {
	want, err := attributeTypes()
	require.NoError(t, err)
	assert.Equal(t, map[string]enumspb.IndexedValueType{
		"ClusterID": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Operation": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"BrokerID":  enumspb.INDEXED_VALUE_TYPE_INT,
		"Tenant":    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Paused":    enumspb.INDEXED_VALUE_TYPE_BOOL,
	}, want)
}

func TestPlanAttributes(t *testing.T) {
	const (
		kw  = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		num = enumspb.INDEXED_VALUE_TYPE_INT
		txt = enumspb.INDEXED_VALUE_TYPE_TEXT
	)
	want := map[string]enumspb.IndexedValueType{"ClusterID": kw, "BrokerID": num}
	tests := []struct {
		name           string
		custom, system map[string]enumspb.IndexedValueType
		missing        []string
		present        []string
		conflicts      []string
	}{
		{name: "empty namespace", missing: []string{"BrokerID=Int", "ClusterID=Keyword"}},
		{name: "all there", custom: map[string]enumspb.IndexedValueType{"ClusterID": kw, "BrokerID": num, "Other": txt},
			present: []string{"BrokerID=Int", "ClusterID=Keyword"}},
		{name: "one there", custom: map[string]enumspb.IndexedValueType{"BrokerID": num},
			missing: []string{"ClusterID=Keyword"}, present: []string{"BrokerID=Int"}},
		{name: "wrong type", custom: map[string]enumspb.IndexedValueType{"ClusterID": txt},
			missing: []string{"BrokerID=Int"}, conflicts: []string{"ClusterID is registered as Text, kfleet needs Keyword"}},
		{name: "a system attribute", system: map[string]enumspb.IndexedValueType{"BrokerID": num},
			missing: []string{"ClusterID=Keyword"}, conflicts: []string{"BrokerID is a system attribute (Int)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planAttributes(want, tt.custom, tt.system)
			assert.Equal(t, tt.missing, nilIfEmpty(names(p.missing)), "missing")
			assert.Equal(t, tt.present, p.present, "present")
			assert.Equal(t, tt.conflicts, p.conflicts, "conflicts")
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

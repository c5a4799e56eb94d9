// Package secretstest holds the contract every secrets.Source keeps, run
// by the tests of each source (the file store here, Secrets Manager
// against the local fleet in internal/localfleet).
package secretstest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/secrets"
)

// BadNames are names every source refuses: they would reach outside a
// file store's directory, or are not Secrets Manager names.
var BadNames = []string{"", "..", "../etc/passwd", "a/../../b", "/abs", "a//b", "a/./b", "a b", "a\x00b", "ü"}

// Run checks src against the secrets.Source contract. It uses names under
// prefix only.
func Run(ctx context.Context, t *testing.T, src secrets.Source, prefix string) {
	t.Helper()
	name := prefix + "kfleet/local-a/admin"
	value := []byte(`{"username":"admin","password":"s3cret-value"}`)

	_, err := src.Get(ctx, name)
	require.ErrorIs(t, err, secrets.ErrNotFound, "a missing secret")
	assert.Contains(t, err.Error(), name, "the error names the secret")
	require.NoError(t, src.Delete(ctx, name), "deleting a missing secret is no error")

	require.NoError(t, src.Put(ctx, name, value))
	got, err := src.Get(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, value, got)

	replaced := []byte(`{"username":"admin","password":"rotated"}`)
	require.NoError(t, src.Put(ctx, name, replaced), "put replaces")
	got, err = src.Get(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, replaced, got)

	bin := []byte{0xff, 0x00, 0xfe, 'k'}
	require.NoError(t, src.Put(ctx, prefix+"binary", bin))
	got, err = src.Get(ctx, prefix+"binary")
	require.NoError(t, err)
	assert.Equal(t, bin, got, "a value that is not UTF-8 round-trips")

	require.NoError(t, src.Delete(ctx, name))
	_, err = src.Get(ctx, name)
	require.ErrorIs(t, err, secrets.ErrNotFound, "deleted")
	require.NoError(t, src.Delete(ctx, name), "gone already")
	require.NoError(t, src.Delete(ctx, prefix+"binary"))

	for _, bad := range BadNames {
		_, err := src.Get(ctx, bad)
		assert.Error(t, err, "get %q", bad)
		assert.NotErrorIs(t, err, secrets.ErrNotFound, "get %q is refused, not looked up", bad)
		assert.Error(t, src.Put(ctx, bad, value), "put %q", bad)
		assert.Error(t, src.Delete(ctx, bad), "delete %q", bad)
	}

	// Writers racing: a reader sees one whole value, never a mix.
	var wg sync.WaitGroup
	var values [][]byte
	for i := range 8 {
		v := []byte(fmt.Sprintf(`{"username":"u%d","password":"%0512d"}`, i, i))
		values = append(values, v)
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, src.Put(ctx, name, v))
		}()
	}
	wg.Wait()
	got, err = src.Get(ctx, name)
	require.NoError(t, err)
	assert.True(t, slices.ContainsFunc(values, func(v []byte) bool { return string(v) == string(got) }), "one writer's whole value")
	require.NoError(t, src.Delete(ctx, name))
}

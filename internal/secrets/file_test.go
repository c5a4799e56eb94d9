package secrets_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/internal/secrets/secretstest"
)

func TestFileStoreKeepsTheSourceContract(t *testing.T) {
	s, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	require.NoError(t, err)
	secretstest.Run(t.Context(), t, s, "")
}

func TestFileStoreIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	s, err := secrets.NewFileStore(dir)
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "a lax directory is made 0700")

	require.NoError(t, s.Put(t.Context(), "kfleet/local-s/admin", []byte("v1")))
	require.NoError(t, s.Put(t.Context(), ".hidden", []byte("v2")))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s", e.Name())
		assert.False(t, fi.IsDir(), "one file per secret, no folders: %s", e.Name())
	}
	assert.ElementsMatch(t, []string{"kfleet%2Flocal-s%2Fadmin", "%2Ehidden"}, names,
		"'/' and a leading '.' are escaped: no secret file is hidden or in a folder")
}

func TestFileStoreReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	s, err := secrets.NewFileStore(dir)
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, s.Put(ctx, "a", []byte("old")))
	old, err := os.Stat(filepath.Join(dir, "a"))
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "a", []byte("new")))
	now, err := os.Stat(filepath.Join(dir, "a"))
	require.NoError(t, err)
	assert.False(t, os.SameFile(old, now), "a new file renamed over the old one, not rewritten in place")
	got, err := s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	// A temporary file left by a crash mid-write is never a secret.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600))
	_, err = s.Get(ctx, ".tmp-123")
	require.ErrorIs(t, err, secrets.ErrNotFound)
}

func TestFileStoreRefusesTraversal(t *testing.T) {
	parent := t.TempDir()
	s, err := secrets.NewFileStore(filepath.Join(parent, "store"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(parent, "outside"), []byte("x"), 0o600))
	for _, name := range []string{"../outside", "a/../../outside", "/etc/passwd", ".."} {
		_, err := s.Get(t.Context(), name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "secret name", name)
		require.Error(t, s.Put(t.Context(), name, []byte("y")), name)
		require.Error(t, s.Delete(t.Context(), name), name)
	}
	b, err := os.ReadFile(filepath.Join(parent, "outside"))
	require.NoError(t, err)
	assert.Equal(t, "x", string(b), "nothing outside the store was touched")
}

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	src, err := secrets.Open("file:"+dir, aws.Config{}, "")
	require.NoError(t, err)
	require.IsType(t, &secrets.FileStore{}, src)
	assert.Equal(t, dir, src.(*secrets.FileStore).Dir())
	src, err = secrets.Open("aws", aws.Config{Region: "us-east-1"}, "http://127.0.0.1:1")
	require.NoError(t, err)
	assert.IsType(t, &secrets.SecretsManager{}, src)
	_, err = secrets.Open("aws:kfleet/prod/", aws.Config{Region: "us-east-1"}, "")
	require.NoError(t, err)
	for _, bad := range []string{"", "file:", "vault:x", "aws:../"} {
		_, err := secrets.Open(bad, aws.Config{}, "")
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), secrets.EnvVar)
	}
}

func TestCredentialsNeverPrintTheirPassword(t *testing.T) {
	c, err := secrets.ParseCredentials([]byte(`{"username":"admin","password":"hunter2"}`))
	require.NoError(t, err)
	assert.Equal(t, secrets.Credentials{Username: "admin", Password: "hunter2"}, c)
	for _, shown := range []string{c.String(), c.GoString(), mustJSON(t, c)} {
		assert.NotContains(t, shown, "hunter2")
		assert.Contains(t, shown, "admin")
	}
	back, err := secrets.ParseCredentials(c.Encode())
	require.NoError(t, err)
	assert.Equal(t, c, back, "Encode is the stored form")

	for _, bad := range []string{`hunter2`, `{"username":"admin"}`, `{"username":"admin","password":5}`, `{"password":"hunter2"`} {
		_, err := secrets.ParseCredentials([]byte(bad))
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), "hunter2")
		assert.NotContains(t, err.Error(), "h'", "not even a character of it")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

package secrets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kfleet/kfleet/internal/fleet"
)

// FileStore keeps each secret in a file of its own in one directory: the
// directory is 0700 and every file 0600, so only the user kfleet runs as
// reads them. A name maps to one file name ('/' escaped, see fileName), so
// a name never names a path outside the directory; values are replaced
// atomically (a temporary file renamed over the old one), so a reader sees
// the old value or the new one, never half of one.
type FileStore struct{ dir string }

// tmpPrefix starts the temporary files of a write. No secret's file starts
// with '.' (fileName escapes a leading one), so a leftover temporary file
// is never taken for a secret.
const tmpPrefix = ".tmp-"

// NewFileStore opens (creating) the store in dir, and makes dir 0700 if it
// was laxer.
func NewFileStore(dir string) (*FileStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("secret store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("secret store %s: %w", abs, err)
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return nil, fmt.Errorf("secret store %s: %w", abs, err)
	}
	return &FileStore{dir: abs}, nil
}

// Dir is the store's directory.
func (s *FileStore) Dir() string { return s.dir }

// fileName maps a valid name to a file name in the store: '%' and '/'
// percent-escaped, and a leading '.' too, so "a/b" is "a%2Fb" and no name
// becomes a hidden or temporary file. The mapping is one to one.
func fileName(name string) (string, error) {
	if err := fleet.ValidSecretName(name); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, r := range name {
		switch {
		case r == '%', r == '/', r == '.' && i == 0:
			fmt.Fprintf(&b, "%%%02X", r)
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 255 { // a file name's limit on Linux
		return "", fmt.Errorf("secret name %q: too long for a file store", name)
	}
	return b.String(), nil
}

func (s *FileStore) path(name string) (string, error) {
	f, err := fileName(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir, f), nil
}

// Get reads the secret.
func (s *FileStore) Get(_ context.Context, name string) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	v, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

// Put writes the secret to a temporary 0600 file, syncs it and renames it
// over the old one.
func (s *FileStore) Put(_ context.Context, name string, value []byte) (err error) {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, tmpPrefix+"*") // created 0600
	if err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	if _, err := tmp.Write(value); err != nil {
		return fmt.Errorf("secret %s: write: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("secret %s: sync: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	// The rename is durable once the directory is synced.
	if d, err := os.Open(s.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Delete removes the secret's file.
func (s *FileStore) Delete(_ context.Context, name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return nil
}

package secrets

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/kfleet/kfleet/internal/fleet"
)

// SecretsManager is a Source on AWS Secrets Manager: a secret's name is
// prefix+name, its value the secret's current version (SecretString, or
// SecretBinary for a value that is not UTF-8).
type SecretsManager struct {
	client *secretsmanager.Client
	prefix string
}

// NewSecretsManager returns a Source on AWS Secrets Manager for cfg.
// endpoint overrides the service endpoint (the local fleet); empty means
// AWS's own. prefix is put before every name (e.g. "kfleet/prod/").
func NewSecretsManager(cfg aws.Config, endpoint, prefix string) *SecretsManager {
	client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &SecretsManager{client: client, prefix: prefix}
}

func (s *SecretsManager) id(name string) (string, error) {
	if err := fleet.ValidSecretName(name); err != nil {
		return "", err
	}
	return s.prefix + name, nil
}

// Get reads the secret's current value.
func (s *SecretsManager) Get(ctx context.Context, name string) ([]byte, error) {
	id, err := s.id(name)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, s.fail(name, "get", err)
	}
	if out.SecretString != nil {
		return []byte(*out.SecretString), nil
	}
	return out.SecretBinary, nil
}

// Put sets a new current value: PutSecretValue, or CreateSecret for a
// secret that does not exist yet (and PutSecretValue again if another
// writer created it meanwhile).
func (s *SecretsManager) Put(ctx context.Context, name string, value []byte) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	put := func() error {
		in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(id)}
		if utf8.Valid(value) {
			in.SecretString = aws.String(string(value))
		} else {
			in.SecretBinary = value
		}
		_, err := s.client.PutSecretValue(ctx, in)
		return err
	}
	err = put()
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return s.fail(name, "put", err)
	}
	in := &secretsmanager.CreateSecretInput{Name: aws.String(id), Description: aws.String("kfleet")}
	if utf8.Valid(value) {
		in.SecretString = aws.String(string(value))
	} else {
		in.SecretBinary = value
	}
	_, err = s.client.CreateSecret(ctx, in)
	var exists *types.ResourceExistsException
	if errors.As(err, &exists) {
		err = put()
	}
	return s.fail(name, "create", err)
}

// Delete deletes the secret at once, without AWS's recovery window: kfleet
// deletes a secret when what it authenticated is gone (a deleted tenant).
func (s *SecretsManager) Delete(ctx context.Context, name string) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String(id), ForceDeleteWithoutRecovery: aws.Bool(true)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	return s.fail(name, "delete", err)
}

// fail names the secret in err (never its value: Secrets Manager's errors
// carry none), and maps a missing secret to ErrNotFound.
func (s *SecretsManager) fail(name, op string, err error) error {
	if err == nil {
		return nil
	}
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	return fmt.Errorf("secret %s: %s: %w", name, op, err)
}

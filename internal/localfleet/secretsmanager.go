package localfleet

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// The AWS Secrets Manager subset kfleet's secret source uses
// (internal/secrets), served as AWS does: JSON 1.1, POST / with
// X-Amz-Target "secretsmanager.<Operation>" — CreateSecret,
// GetSecretValue, PutSecretValue, DeleteSecret and DescribeSecret — with
// AWS's error codes, so aws-sdk-go-v2 and the AWS CLI work against it.
// Values live in memory only: never logged (errors name secrets, never
// values) and never served by the fleet's own API (/v1/...).

const (
	smTargetPrefix = "secretsmanager."
	smStageCurrent = "AWSCURRENT"
	smStagePrev    = "AWSPREVIOUS"
	// maxSecretValue is Secrets Manager's limit on a value (64 KiB);
	// maxSMBody leaves room for base64 and the rest of the request.
	maxSecretValue = 64 << 10
	maxSMBody      = 256 << 10
)

type secretsManager struct {
	log zerolog.Logger
	now func() time.Time

	mu      sync.Mutex
	secrets map[string]*smSecret // by name
}

type smSecret struct {
	name, arn, description string
	created, changed       time.Time
	// deletion is when a secret deleted with a recovery window goes; zero
	// for a secret in use. Such a secret refuses reads and writes.
	deletion          time.Time
	current, previous *smVersion
	tags              []smTag
}

type smVersion struct {
	id      string
	str     *string
	bin     []byte
	created time.Time
}

type smTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func newSecretsManager(log zerolog.Logger, now func() time.Time) *secretsManager {
	return &secretsManager{log: log, now: now, secrets: map[string]*smSecret{}}
}

// smErr is an error in AWS's JSON shape; the ssm service writes it.
func smErr(code, format string, args ...any) *ssmError {
	return &ssmError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *secretsManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, err := s.serve(r)
	writeAWSJSON(w, r, s.log, out, err, "InternalServiceError")
}

func (s *secretsManager) serve(r *http.Request) (any, error) {
	if err := checkAuthorization(r.Header.Get("Authorization")); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSMBody))
	if err != nil {
		return nil, smErr("InvalidRequestException", "read body: %v", err)
	}
	decode := func(v any) error {
		if err := json.Unmarshal(body, v); err != nil {
			// Never echo the body: it may hold a value. json's errors
			// quote at most a character; say only where it broke.
			return smErr("SerializationException", "malformed request body")
		}
		return nil
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), smTargetPrefix)
	switch op {
	case "CreateSecret":
		var in smCreateInput
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.create(in)
	case "GetSecretValue":
		var in smGetInput
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.get(in)
	case "PutSecretValue":
		var in smPutInput
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.put(in)
	case "DeleteSecret":
		var in smDeleteInput
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.delete(in)
	case "DescribeSecret":
		var in smGetInput
		if err := decode(&in); err != nil {
			return nil, err
		}
		return s.describe(in)
	}
	return nil, smErr("UnknownOperationException", "operation %q is not served by the local fleet", r.Header.Get("X-Amz-Target"))
}

type smCreateInput struct {
	Name               string   `json:"Name"`
	ClientRequestToken string   `json:"ClientRequestToken"`
	Description        string   `json:"Description"`
	SecretString       *string  `json:"SecretString"`
	SecretBinary       []byte   `json:"SecretBinary"` // base64 on the wire
	Tags               []smTag  `json:"Tags"`
	AddReplicaRegions  []string `json:"AddReplicaRegions"`
}

type smGetInput struct {
	SecretID     string `json:"SecretId"`
	VersionID    string `json:"VersionId"`
	VersionStage string `json:"VersionStage"`
}

type smPutInput struct {
	SecretID           string   `json:"SecretId"`
	ClientRequestToken string   `json:"ClientRequestToken"`
	SecretString       *string  `json:"SecretString"`
	SecretBinary       []byte   `json:"SecretBinary"`
	VersionStages      []string `json:"VersionStages"`
}

type smDeleteInput struct {
	SecretID                   string `json:"SecretId"`
	RecoveryWindowInDays       *int64 `json:"RecoveryWindowInDays"`
	ForceDeleteWithoutRecovery *bool  `json:"ForceDeleteWithoutRecovery"`
}

// smEpoch is how JSON 1.1 encodes a timestamp: epoch seconds.
func smEpoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (s *secretsManager) create(in smCreateInput) (any, error) {
	if err := validSMName(in.Name); err != nil {
		return nil, err
	}
	if len(in.AddReplicaRegions) > 0 {
		return nil, smErr("InvalidParameterException", "the local fleet has one region: no replicas")
	}
	v, err := s.newVersion(in.ClientRequestToken, in.SecretString, in.SecretBinary, false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.secrets[in.Name]; ok {
		switch {
		case !old.deletion.IsZero():
			return nil, smErr("InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
		case v != nil && old.current != nil && old.current.id == v.id && old.current.same(v):
			// A retry of the same request (same token and value).
			return map[string]any{"ARN": old.arn, "Name": old.name, "VersionId": v.id}, nil
		}
		return nil, smErr("ResourceExistsException", "The operation failed because the secret %s already exists.", in.Name)
	}
	now := s.now()
	sec := &smSecret{name: in.Name, arn: smARN(in.Name), description: in.Description, created: now, changed: now,
		current: v, tags: slices.Clone(in.Tags)}
	s.secrets[in.Name] = sec
	out := map[string]any{"ARN": sec.arn, "Name": sec.name}
	if v != nil {
		out["VersionId"] = v.id
	}
	return out, nil
}

func (s *secretsManager) get(in smGetInput) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretID, false)
	if err != nil {
		return nil, err
	}
	var v *smVersion
	var stage string
	switch {
	case in.VersionID != "":
		for st, cand := range map[string]*smVersion{smStageCurrent: sec.current, smStagePrev: sec.previous} {
			if cand != nil && cand.id == in.VersionID {
				v, stage = cand, st
			}
		}
		if in.VersionStage != "" && in.VersionStage != stage {
			v = nil
		}
	case in.VersionStage == "" || in.VersionStage == smStageCurrent:
		v, stage = sec.current, smStageCurrent
	case in.VersionStage == smStagePrev:
		v, stage = sec.previous, smStagePrev
	}
	if v == nil {
		return nil, smErr("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %q, staging label: %q", in.VersionID, cmp.Or(in.VersionStage, smStageCurrent))
	}
	out := map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id,
		"VersionStages": []string{stage}, "CreatedDate": smEpoch(v.created)}
	if v.str != nil {
		out["SecretString"] = *v.str
	} else {
		out["SecretBinary"] = v.bin
	}
	return out, nil
}

func (s *secretsManager) put(in smPutInput) (any, error) {
	if len(in.VersionStages) > 0 && !slices.Equal(in.VersionStages, []string{smStageCurrent}) {
		return nil, smErr("InvalidParameterException", "the local fleet stages new versions as %s only", smStageCurrent)
	}
	v, err := s.newVersion(in.ClientRequestToken, in.SecretString, in.SecretBinary, true)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretID, false)
	if err != nil {
		return nil, err
	}
	for _, old := range []*smVersion{sec.current, sec.previous} {
		if old != nil && old.id == v.id {
			if old.same(v) { // a retry: nothing changes
				return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": []string{smStageCurrent}}, nil
			}
			return nil, smErr("ResourceExistsException", "A resource with the ID you requested already exists.")
		}
	}
	sec.previous, sec.current, sec.changed = sec.current, v, s.now()
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": []string{smStageCurrent}}, nil
}

func (s *secretsManager) delete(in smDeleteInput) (any, error) {
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	if force && in.RecoveryWindowInDays != nil {
		return nil, smErr("InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		if days = *in.RecoveryWindowInDays; days < 7 || days > 30 {
			return nil, smErr("InvalidParameterException", "RecoveryWindowInDays must be between 7 and 30 days.")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	sec, err := s.lookup(in.SecretID, true)
	if err != nil {
		// AWS answers a forced delete of a secret that is gone with
		// success, so that retries succeed.
		if force && in.SecretID != "" {
			return map[string]any{"ARN": smARN(in.SecretID), "Name": in.SecretID, "DeletionDate": smEpoch(now)}, nil
		}
		return nil, err
	}
	if force {
		delete(s.secrets, sec.name)
		return map[string]any{"ARN": sec.arn, "Name": sec.name, "DeletionDate": smEpoch(now)}, nil
	}
	if !sec.deletion.IsZero() {
		return nil, smErr("InvalidRequestException", "You can't perform this operation on the secret because it was already scheduled for deletion.")
	}
	sec.deletion = now.Add(time.Duration(days) * 24 * time.Hour)
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "DeletionDate": smEpoch(sec.deletion)}, nil
}

func (s *secretsManager) describe(in smGetInput) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretID, true)
	if err != nil {
		return nil, err
	}
	stages := map[string][]string{}
	if sec.current != nil {
		stages[sec.current.id] = []string{smStageCurrent}
	}
	if sec.previous != nil {
		stages[sec.previous.id] = []string{smStagePrev}
	}
	out := map[string]any{"ARN": sec.arn, "Name": sec.name, "CreatedDate": smEpoch(sec.created),
		"LastChangedDate": smEpoch(sec.changed), "VersionIdsToStages": stages, "Tags": nonNil(sec.tags)}
	if sec.description != "" {
		out["Description"] = sec.description
	}
	if !sec.deletion.IsZero() {
		out["DeletedDate"] = smEpoch(sec.changed)
		out["DeletionDate"] = smEpoch(sec.deletion)
	}
	return out, nil
}

// lookup finds a secret by name or ARN; one scheduled for deletion only
// when deleted is asked for (DescribeSecret, DeleteSecret), as AWS.
func (s *secretsManager) lookup(id string, deleted bool) (*smSecret, error) {
	if id == "" {
		return nil, smErr("InvalidParameterException", "SecretId is required.")
	}
	sec, ok := s.secrets[id]
	if !ok {
		for _, c := range s.secrets {
			if c.arn == id {
				sec, ok = c, true
			}
		}
	}
	if !ok {
		return nil, smErr("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
	if !deleted && !sec.deletion.IsZero() {
		return nil, smErr("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	}
	return sec, nil
}

// newVersion checks a value given to CreateSecret or PutSecretValue (one
// of string and binary; required for a put) and makes its version: the
// client's request token is the version id, as in AWS.
func (s *secretsManager) newVersion(token string, str *string, bin []byte, required bool) (*smVersion, error) {
	switch {
	case str != nil && bin != nil:
		return nil, smErr("InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.")
	case str == nil && bin == nil && required:
		return nil, smErr("InvalidParameterException", "You must provide either SecretString or SecretBinary.")
	case str == nil && bin == nil:
		return nil, nil
	case len(bin) > maxSecretValue || str != nil && len(*str) > maxSecretValue:
		return nil, smErr("InvalidParameterException", "The secret value is larger than %d bytes.", maxSecretValue)
	}
	if token == "" {
		token = newCommandID()
	} else if len(token) < 32 || len(token) > 64 {
		return nil, smErr("InvalidParameterException", "ClientRequestToken must be 32 to 64 characters.")
	}
	v := &smVersion{id: token, created: s.now()}
	if str != nil {
		c := *str
		v.str = &c
	} else {
		v.bin = slices.Clone(bin)
	}
	return v, nil
}

// same reports whether two versions hold the same value.
func (v *smVersion) same(o *smVersion) bool {
	if (v.str == nil) != (o.str == nil) {
		return false
	}
	if v.str != nil {
		return *v.str == *o.str
	}
	return slices.Equal(v.bin, o.bin)
}

// validSMName is Secrets Manager's rule for a secret's name: 1 to 512 of
// letters, digits and /_+=.@-.
func validSMName(name string) error {
	if name == "" || len(name) > 512 {
		return smErr("InvalidParameterException", "Invalid name. Must be 1 to 512 characters.")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-", r)) {
			return smErr("InvalidParameterException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
		}
	}
	return nil
}

// smARN is a secret's ARN: AWS ends it with six random characters, so a
// secret deleted and created again gets a new one.
func smARN(name string) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", AWSRegion, ec2OwnerID, name, b[:])
}

// jsonTargets routes a JSON-protocol call by its X-Amz-Target's service:
// Secrets Manager's to sm, the rest (SSM's) to ssm.
func jsonTargets(ssm, sm http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), smTargetPrefix) {
			sm.ServeHTTP(w, r)
			return
		}
		ssm.ServeHTTP(w, r)
	})
}

// Package deploycheck checks kfleet's deployment offline: the Kubernetes
// manifests kustomize renders from deploy/k8s (strictly decoded into the
// typed k8s.io/api structs, then held to kfleet's own rules), the
// Dockerfile, and the static binaries the image ships. `make lint` runs
// it through cmd/deploycheck; no cluster and no network are needed.
package deploycheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Objects are a render's objects, by kind, in the order they came.
type Objects struct {
	Deployments []*appsv1.Deployment
	Jobs        []*batchv1.Job
	PDBs        []*policyv1.PodDisruptionBudget
	Services    []*corev1.Service
	ConfigMaps  []*corev1.ConfigMap
	Secrets     []*corev1.Secret
	Accounts    []*corev1.ServiceAccount
	Namespaces  []*corev1.Namespace
}

// Decode strictly decodes a multi-document YAML render: each document
// must be a kind kfleet deploys, and every field must exist in that
// kind's API type with the right type (an unknown or misspelt field, a
// string where a number goes, or a duplicated key is an error).
func Decode(data []byte) (*Objects, error) {
	objs := &Objects{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := objs.decode(doc); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
	}
}

func (o *Objects) decode(doc []byte) error {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w", err)
	}
	what := meta.APIVersion + " " + meta.Kind + " " + meta.Metadata.Name
	if meta.Metadata.Name == "" {
		return fmt.Errorf("%s: no metadata.name", what)
	}
	strict := func(into any) error {
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	switch meta.APIVersion + "/" + meta.Kind {
	case "apps/v1/Deployment":
		return add(&o.Deployments, strict)
	case "batch/v1/Job":
		return add(&o.Jobs, strict)
	case "policy/v1/PodDisruptionBudget":
		return add(&o.PDBs, strict)
	case "v1/Service":
		return add(&o.Services, strict)
	case "v1/ConfigMap":
		return add(&o.ConfigMaps, strict)
	case "v1/Secret":
		return add(&o.Secrets, strict)
	case "v1/ServiceAccount":
		return add(&o.Accounts, strict)
	case "v1/Namespace":
		return add(&o.Namespaces, strict)
	}
	return fmt.Errorf("%s: no schema for this apiVersion and kind (kfleet deploys Deployments, Jobs, PodDisruptionBudgets, Services, ConfigMaps, Secrets, ServiceAccounts and Namespaces)", what)
}

func add[T any](list *[]*T, strict func(any) error) error {
	v := new(T)
	if err := strict(v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

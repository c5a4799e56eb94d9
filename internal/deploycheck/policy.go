package deploycheck

import (
	"errors"
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"

	"github.com/kfleet/kfleet/internal/chatops"
)

// policyAt checks the ChatOps policy file the server will read at path:
// it lies on a ConfigMap volume of the render, and the ConfigMap's key
// parses as the server would parse it (a policy that does not parse keeps
// the server from starting).
func (c *checker) policyAt(p *pod, ct *corev1.Container, file string) error {
	v := mountedVolume(p, ct, file)
	if v == nil || v.ConfigMap == nil {
		return errors.New("not on a ConfigMap volume")
	}
	cm := c.configMap(p.namespace, v.ConfigMap.Name)
	if cm == nil {
		return fmt.Errorf("ConfigMap %s is not in the render", v.ConfigMap.Name)
	}
	key := path.Base(file)
	for _, item := range v.ConfigMap.Items {
		if item.Path == key {
			key = item.Key
		}
	}
	data, ok := cm.Data[key]
	if !ok {
		return fmt.Errorf("ConfigMap %s has no key %s", cm.Name, key)
	}
	if _, err := chatops.ParsePolicy([]byte(data)); err != nil {
		return fmt.Errorf("ConfigMap %s: %w", cm.Name, err)
	}
	return nil
}

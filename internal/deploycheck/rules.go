package deploycheck

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kfleet/kfleet/internal/workerapp"
)

// The names and labels the rules find kfleet's parts by.
const (
	labelComponent    = "app.kubernetes.io/component"
	componentWorker   = "worker"
	componentChatops  = "chatops"
	componentOverview = "overview"
	workerAccount     = "kfleet-worker"
	roleAnnotation    = "eks.amazonaws.com/role-arn"
)

// drainMargin is what the grace period must leave beyond the worker's own
// stop timeouts: closing connections, and the kubelet's own delays.
const drainMargin = 5 * time.Second

// MinWorkerGrace is the shortest terminationGracePeriodSeconds the
// worker's pods may have: the worker stops its sensing worker, then its
// task queue's (workerapp.RunWorker), each waiting up to its timeout.
const MinWorkerGrace = workerapp.StopTimeout + workerapp.SensingStopTimeout + drainMargin

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$`)

// pod is a pod template with what it belongs to.
type pod struct {
	what, component, namespace string
	tmpl                       *corev1.PodTemplateSpec
}

// Check holds a decoded render to kfleet's rules; it returns every
// violation, each naming the object.
func Check(o *Objects) []error {
	c := &checker{o: o}
	var pods []pod
	for _, d := range o.Deployments {
		what := "Deployment " + d.Name
		pods = append(pods, pod{what, d.Spec.Template.Labels[labelComponent], d.Namespace, &d.Spec.Template})
		if d.Spec.Selector == nil {
			c.fail("%s: no selector", what)
		} else if !c.selects(d.Spec.Selector, d.Spec.Template.Labels) {
			c.fail("%s: its selector does not select its own pods", what)
		}
	}
	for _, j := range o.Jobs {
		pods = append(pods, pod{"Job " + j.Name, j.Spec.Template.Labels[labelComponent], j.Namespace, &j.Spec.Template})
	}
	for _, p := range pods {
		c.pod(p)
	}
	c.worker()
	c.chatops()
	c.overview()
	c.attributesJob()
	c.services(pods)
	for _, s := range o.Secrets {
		if len(s.Data) > 0 || len(s.StringData) > 0 {
			c.fail("Secret %s: carries values; secrets are created out of band and only referenced", s.Name)
		}
	}
	return c.errs
}

type checker struct {
	o    *Objects
	errs []error
}

func (c *checker) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *checker) selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		c.fail("selector %v: %v", sel, err)
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(l))
}

func (c *checker) configMap(ns, name string) *corev1.ConfigMap {
	for _, cm := range c.o.ConfigMaps {
		if cm.Namespace == ns && cm.Name == name {
			return cm
		}
	}
	return nil
}

// pod checks what every kfleet pod must be: non-root, confined, bounded,
// and given exactly the settings its process reads.
func (c *checker) pod(p pod) {
	spec := &p.tmpl.Spec
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if sa := spec.ServiceAccountName; sa != "" && !slices.ContainsFunc(c.o.Accounts, func(a *corev1.ServiceAccount) bool {
		return a.Name == sa && a.Namespace == p.namespace
	}) {
		c.fail("%s: ServiceAccount %s is not in the render", p.what, sa)
	}
	for _, v := range spec.Volumes {
		if cm := v.ConfigMap; cm != nil && (cm.Optional == nil || !*cm.Optional) && c.configMap(p.namespace, cm.Name) == nil {
			c.fail("%s: volume %s: ConfigMap %s is not in the render", p.what, v.Name, cm.Name)
		}
	}
	if len(spec.Containers) == 0 {
		c.fail("%s: no containers", p.what)
	}
	for i := range spec.Containers {
		ct := &spec.Containers[i]
		what := p.what + " container " + ct.Name
		sc := ct.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if !isTrue(first(sc.RunAsNonRoot, psc.RunAsNonRoot)) {
			c.fail("%s: runAsNonRoot is not true", what)
		}
		if uid := first(sc.RunAsUser, psc.RunAsUser); uid != nil && *uid == 0 {
			c.fail("%s: runs as uid 0", what)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			c.fail("%s: seccomp profile is not RuntimeDefault", what)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			c.fail("%s: root filesystem is not read-only", what)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.fail("%s: allowPrivilegeEscalation is not false", what)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			c.fail("%s: capabilities: want drop [ALL] and nothing added", what)
		}
		if ct.Resources.Requests.Cpu().IsZero() || ct.Resources.Requests.Memory().IsZero() || ct.Resources.Limits.Memory().IsZero() {
			c.fail("%s: want cpu and memory requests and a memory limit", what)
		}
		if err := pinned(ct.Image); err != nil {
			c.fail("%s: %v", what, err)
		}
		c.env(p, what, ct)
	}
}

func first[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// pinned refuses an image without a tag or digest, or tagged latest: a
// rollout must run the image that was reviewed.
func pinned(image string) error {
	if strings.Contains(image, "@sha256:") {
		return nil
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	if !ok || tag == "" || tag == "latest" {
		return fmt.Errorf("image %q: pin a tag (not latest) or a digest", image)
	}
	return nil
}

// env checks a container's environment against what its process reads:
// nothing unknown (a misspelt name would be silently ignored), every
// required one set, secrets only from Secrets.
func (c *checker) env(p pod, what string, ct *corev1.Container) {
	allowed := envFor(p.component)
	set := map[string]string{} // name -> where it comes from
	for _, from := range ct.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := c.configMap(p.namespace, from.ConfigMapRef.Name)
			if cm == nil {
				if !isTrue(from.ConfigMapRef.Optional) {
					c.fail("%s: envFrom ConfigMap %s is not in the render", what, from.ConfigMapRef.Name)
				}
				continue
			}
			for k := range cm.Data {
				set[from.Prefix+k] = "ConfigMap " + cm.Name
				// Checked here too: a variable from env overrides the
				// ConfigMap's, which still holds the secret.
				if allowed[from.Prefix+k] == secret {
					c.fail("%s: %s is a secret: set it from a Secret (secretKeyRef), not ConfigMap %s", what, from.Prefix+k, cm.Name)
				}
			}
		case from.SecretRef != nil:
			c.fail("%s: envFrom Secret %s hides which variables it sets: use env with secretKeyRef", what, from.SecretRef.Name)
		}
	}
	for _, e := range ct.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			set[e.Name] = "Secret"
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			set[e.Name] = "ConfigMap " + e.ValueFrom.ConfigMapKeyRef.Name
		default:
			set[e.Name] = "a literal value"
		}
	}
	for name, from := range set {
		n, ok := allowed[name]
		switch {
		case !ok:
			c.fail("%s: sets %s (from %s), which kfleet's %s does not read", what, name, from, cmpOr(p.component, "process"))
		case n == secret && from != "Secret":
			c.fail("%s: %s is a secret: set it from a Secret (secretKeyRef), not %s", what, name, from)
		}
	}
	for name, n := range allowed {
		if _, ok := set[name]; n == required && !ok {
			c.fail("%s: %s is not set", what, name)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *checker) deployment(component string) *pod {
	for _, d := range c.o.Deployments {
		if d.Spec.Template.Labels[labelComponent] == component {
			return &pod{"Deployment " + d.Name, component, d.Namespace, &d.Spec.Template}
		}
	}
	c.fail("no Deployment of component %s (label %s)", component, labelComponent)
	return nil
}

// worker checks the worker's availability, shutdown, identity and scrape.
func (c *checker) worker() {
	p := c.deployment(componentWorker)
	if p == nil {
		return
	}
	for _, d := range c.o.Deployments {
		if &d.Spec.Template == p.tmpl && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2) {
			c.fail("%s: want at least 2 replicas (one stopping leaves another polling)", p.what)
		}
	}
	spec := &p.tmpl.Spec
	grace := time.Duration(30) * time.Second // Kubernetes' default
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	if grace < MinWorkerGrace {
		c.fail("%s: terminationGracePeriodSeconds %s is shorter than the worker's drain (%s stop timeouts + %s margin)",
			p.what, grace, workerapp.StopTimeout+workerapp.SensingStopTimeout, drainMargin)
	}
	if spec.ServiceAccountName != workerAccount {
		c.fail("%s: serviceAccountName %q, want %s (its IAM role)", p.what, spec.ServiceAccountName, workerAccount)
	}
	for _, a := range c.o.Accounts {
		if a.Name == workerAccount && a.Namespace == p.namespace && !roleARN.MatchString(a.Annotations[roleAnnotation]) {
			c.fail("ServiceAccount %s: annotation %s %q is not an IAM role ARN", a.Name, roleAnnotation, a.Annotations[roleAnnotation])
		}
	}
	selected := false
	for _, pdb := range c.o.PDBs {
		if pdb.Namespace != p.namespace || pdb.Spec.Selector == nil || !c.selects(pdb.Spec.Selector, p.tmpl.Labels) {
			continue
		}
		selected = true
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			c.fail("PodDisruptionBudget %s: neither minAvailable nor maxUnavailable", pdb.Name)
		}
	}
	if !selected {
		c.fail("%s: no PodDisruptionBudget selects its pods", p.what)
	}
	c.scrape(p)
}

// scrape checks that Prometheus' annotations point at the port the
// worker serves its metrics on, reachable from outside the pod.
func (c *checker) scrape(p *pod) {
	ann := p.tmpl.Annotations
	if ann["prometheus.io/scrape"] != "true" {
		c.fail("%s: no prometheus.io/scrape annotation", p.what)
		return
	}
	var addr string
	for _, from := range p.tmpl.Spec.Containers[0].EnvFrom {
		if from.ConfigMapRef != nil {
			if cm := c.configMap(p.namespace, from.ConfigMapRef.Name); cm != nil && cm.Data["KFLEET_METRICS_ADDR"] != "" {
				addr = cm.Data["KFLEET_METRICS_ADDR"]
			}
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != ann["prometheus.io/port"] || host == "127.0.0.1" || host == "localhost" {
		c.fail("%s: KFLEET_METRICS_ADDR %q must listen beyond loopback on the annotated port %q", p.what, addr, ann["prometheus.io/port"])
	}
}

// chatops checks the ChatOps server gets a policy that parses and a
// signing secret from a Secret.
func (c *checker) chatops() {
	p := c.deployment(componentChatops)
	if p == nil {
		return
	}
	ct := &p.tmpl.Spec.Containers[0]
	args := slices.Concat(ct.Command, ct.Args)
	if !slices.Contains(args, "chatops") {
		c.fail("%s: does not run `starter chatops`", p.what)
	}
	if path, ok := flagValue(args, "--auth"); !ok {
		c.fail("%s: no --auth policy file", p.what)
	} else if err := c.policyAt(p, ct, path); err != nil {
		c.fail("%s: --auth %s: %v", p.what, path, err)
	}
	if path, ok := flagValue(args, "--signing-secret-file"); ok {
		if v := mountedVolume(p, ct, path); v == nil || v.Secret == nil {
			c.fail("%s: --signing-secret-file %s is not on a Secret volume", p.what, path)
		}
	} else if !slices.ContainsFunc(ct.Env, func(e corev1.EnvVar) bool { return e.Name == "KFLEET_SLACK_SIGNING_SECRET" }) {
		c.fail("%s: no signing secret (--signing-secret-file or KFLEET_SLACK_SIGNING_SECRET)", p.what)
	}
}

func (c *checker) overview() {
	p := c.deployment(componentOverview)
	if p == nil {
		return
	}
	ct := &p.tmpl.Spec.Containers[0]
	args := slices.Concat(ct.Command, ct.Args)
	if !slices.Contains(args, "overview") {
		c.fail("%s: does not run `starter overview`", p.what)
	}
	if _, ok := flagValue(args, "--listen"); !ok {
		c.fail("%s: no --listen", p.what)
	}
}

// attributesJob checks a Job registers the search attributes.
func (c *checker) attributesJob() {
	for _, j := range c.o.Jobs {
		for _, ct := range j.Spec.Template.Spec.Containers {
			args := slices.Concat(ct.Command, ct.Args)
			if i := slices.Index(args, "attributes"); i >= 0 && i+1 < len(args) && args[i+1] == "register" {
				return
			}
		}
	}
	c.fail("no Job runs `starter attributes register` (the namespace's search attributes)")
}

// services checks every Service reaches a pod's named or numbered port.
func (c *checker) services(pods []pod) {
	for _, s := range c.o.Services {
		var match *pod
		for i, p := range pods {
			if p.namespace == s.Namespace && len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.tmpl.Labels)) {
				match = &pods[i]
			}
		}
		if match == nil {
			c.fail("Service %s: its selector matches no pods", s.Name)
			continue
		}
		for _, sp := range s.Spec.Ports {
			if !hasPort(match.tmpl, sp.TargetPort.String(), sp.TargetPort.IntValue()) {
				c.fail("Service %s: targetPort %s is not a port of %s", s.Name, sp.TargetPort.String(), match.what)
			}
		}
	}
}

func hasPort(t *corev1.PodTemplateSpec, name string, number int) bool {
	for _, ct := range t.Spec.Containers {
		for _, p := range ct.Ports {
			if p.Name == name || (number > 0 && int(p.ContainerPort) == number) {
				return true
			}
		}
	}
	return false
}

// flagValue finds --flag VALUE or --flag=VALUE.
func flagValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

// mountedVolume is the volume a file path of the container lies on.
func mountedVolume(p *pod, ct *corev1.Container, path string) *corev1.Volume {
	for _, m := range ct.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			for i, v := range p.tmpl.Spec.Volumes {
				if v.Name == m.Name {
					return &p.tmpl.Spec.Volumes[i]
				}
			}
		}
	}
	return nil
}

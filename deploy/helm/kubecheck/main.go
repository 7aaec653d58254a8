// Command kubecheck validates rendered Kubernetes manifests offline: every
// document must be a kind it knows, and must decode strictly (no unknown
// field, no wrong type) into the Go types the Kubernetes API server itself
// is built from (k8s.io/api) or, for ServiceMonitor, the Prometheus
// Operator's. Then a few checks the types cannot express (names, selectors
// that match the pod labels, ports the probes and Services point at).
//
// It stands in for kubeconform, whose JSON schemas are downloaded from
// GitHub at run time; this checker needs nothing but the Go module proxy
// to build.
//
//	helm template r deploy/helm/embedrank | go run ./deploy/helm/kubecheck
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

type doc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	}
	return nil, fmt.Errorf("unknown kind %s %s", apiVersion, kind)
}

func splitDocs(r io.Reader) ([]string, error) {
	var docs []string
	var cur strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line + "\n")
	}
	docs = append(docs, cur.String())
	return docs, sc.Err()
}

func isEmpty(d string) bool {
	for _, line := range strings.Split(d, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

type checker struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	others      []any
}

func (c *checker) add(d string) (string, error) {
	var head doc
	if err := yaml.Unmarshal([]byte(d), &head); err != nil {
		return "", fmt.Errorf("not YAML: %w", err)
	}
	where := fmt.Sprintf("%s %q", head.Kind, head.Metadata.Name)
	if head.Metadata.Name == "" {
		return where, errors.New("metadata.name is empty")
	}
	obj, err := newObject(head.APIVersion, head.Kind)
	if err != nil {
		return where, err
	}
	if err := yaml.UnmarshalStrict([]byte(d), obj); err != nil {
		return where, err
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		c.deployments = append(c.deployments, o)
	case *corev1.Service:
		c.services = append(c.services, o)
	default:
		c.others = append(c.others, o)
	}
	return where, nil
}

func portNamed(ports []corev1.ContainerPort, p intstr.IntOrString) bool {
	for _, cp := range ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return true
		}
	}
	return false
}

func (c *checker) crossCheck() []string {
	var problems []string
	for _, d := range c.deployments {
		where := "Deployment " + d.Name
		sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
		if d.Spec.Selector == nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			problems = append(problems, where+": spec.selector does not match the pod template's labels")
		}
		if len(d.Spec.Template.Spec.Containers) == 0 {
			problems = append(problems, where+": no containers")
		}
		volumes := map[string]bool{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			volumes[v.Name] = true
		}
		all := append(append([]corev1.Container{}, d.Spec.Template.Spec.InitContainers...), d.Spec.Template.Spec.Containers...)
		for _, ct := range all {
			if ct.Image == "" {
				problems = append(problems, where+": container "+ct.Name+" has no image")
			}
			for _, m := range ct.VolumeMounts {
				if !volumes[m.Name] {
					problems = append(problems, where+": container "+ct.Name+" mounts undefined volume "+m.Name)
				}
			}
			for name, p := range map[string]*corev1.Probe{"startup": ct.StartupProbe, "readiness": ct.ReadinessProbe, "liveness": ct.LivenessProbe} {
				if p == nil {
					continue
				}
				if p.GRPC != nil && !portNamed(ct.Ports, intstr.FromInt32(p.GRPC.Port)) {
					problems = append(problems, fmt.Sprintf("%s: %s probe on port %d, which the container does not declare", where, name, p.GRPC.Port))
				}
				if p.GRPC == nil && p.Exec == nil && p.HTTPGet == nil && p.TCPSocket == nil {
					problems = append(problems, where+": "+name+" probe has no handler")
				}
			}
		}
		for _, s := range c.services {
			if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				continue
			}
			for _, sp := range s.Spec.Ports {
				found := false
				for _, ct := range d.Spec.Template.Spec.Containers {
					found = found || portNamed(ct.Ports, sp.TargetPort)
				}
				if !found {
					problems = append(problems, fmt.Sprintf("Service %s: port %s targets %s, which no container declares", s.Name, sp.Name, sp.TargetPort.String()))
				}
			}
		}
	}
	for _, s := range c.services {
		if len(s.Spec.Selector) == 0 {
			problems = append(problems, "Service "+s.Name+": no selector")
		}
	}
	return problems
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecheck:", err)
		os.Exit(2)
	}
	docs, err := splitDocs(bytes.NewReader(input))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecheck:", err)
		os.Exit(2)
	}
	c := &checker{}
	var problems []string
	n := 0
	for _, d := range docs {
		if isEmpty(d) {
			continue
		}
		n++
		where, err := c.add(d)
		if err != nil {
			problems = append(problems, fmt.Sprintf("document %d (%s): %v", n, where, err))
			continue
		}
		fmt.Println("valid:", where)
	}
	problems = append(problems, c.crossCheck()...)
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "INVALID:", p)
	}
	if n == 0 {
		fmt.Fprintln(os.Stderr, "kubecheck: no documents")
		os.Exit(1)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("%d documents valid\n", n)
}

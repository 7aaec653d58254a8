package main

import (
	"strings"
	"testing"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
        - name: c
          image: img
          ports: [{name: grpc, containerPort: 50051}]
          readinessProbe:
            grpc: {port: 50051}
`

func check(t *testing.T, manifests string) []string {
	t.Helper()
	docs, err := splitDocs(strings.NewReader(manifests))
	if err != nil {
		t.Fatal(err)
	}
	c := &checker{}
	var problems []string
	for _, d := range docs {
		if isEmpty(d) {
			continue
		}
		if where, err := c.add(d); err != nil {
			problems = append(problems, where+": "+err.Error())
		}
	}
	return append(problems, c.crossCheck()...)
}

func TestValid(t *testing.T) {
	svc := "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: x}\n  ports: [{name: grpc, port: 50051, targetPort: grpc}]\n"
	if p := check(t, deployment+svc); len(p) != 0 {
		t.Fatal(p)
	}
}

func TestRejected(t *testing.T) {
	cases := map[string]string{
		"unknown field":  strings.Replace(deployment, "  selector:", "  replica: 3\n  selector:", 1),
		"wrong type":     strings.Replace(deployment, "containerPort: 50051", "containerPort: grpc", 1),
		"unknown kind":   "apiVersion: v1\nkind: Pod2\nmetadata: {name: p}\n",
		"selector":       strings.Replace(deployment, "labels: {app: x}", "labels: {app: y}", 1),
		"probe port":     strings.Replace(deployment, "grpc: {port: 50051}", "grpc: {port: 50052}", 1),
		"service target": deployment + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: x}\n  ports: [{name: m, port: 9100, targetPort: metrics}]\n",
		"no name":        strings.Replace(deployment, "name: d", "name: \"\"", 1),
	}
	for name, manifests := range cases {
		if p := check(t, manifests); len(p) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Package e2e holds drguard's end-to-end tests of what ships beside the
// binary: the Prometheus rules and Grafana dashboards against a real
// Prometheus scraping a running drguard, the Alertmanager receiver against a
// real Alertmanager, the kustomize base against a real kube-apiserver, and
// the whole chain from a failing component to a remediation step. The
// package has no non-test code.
package e2e

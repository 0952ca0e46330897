//go:build tools

// Keeps the modules whose CRDs the tests read (KubeFlex's ControlPlane, OCM's ManagedCluster)
// in go.mod and go.sum, so `go mod download` brings them into the module cache.
package tools

import (
	_ "github.com/kubestellar/kubeflex/api/v1alpha1"
	_ "open-cluster-management.io/api/cluster/v1"
)

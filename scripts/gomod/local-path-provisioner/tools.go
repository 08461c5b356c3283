//go:build tools

// Package tools pins the provisioner's command in this module's graph.
package tools

import _ "github.com/rancher/local-path-provisioner"

# Deployments must set CPU and memory limits on every container, so that a runaway
# training or inference process cannot starve its neighbours or the cluster bill.
package k8s.limits

import rego.v1

required_limits := ["cpu", "memory"]

containers contains container if {
	some container in input.request.object.spec.template.spec.containers
}

containers contains container if {
	some container in input.request.object.spec.template.spec.initContainers
}

deny contains msg if {
	input.request.kind.kind == "Deployment"
	some container in containers
	some resource in required_limits
	not has_limit(container, resource)
	msg := sprintf("container %q has no %s limit", [container.name, resource])
}

has_limit(container, resource) if {
	limit := container.resources.limits[resource]
	limit != ""
}

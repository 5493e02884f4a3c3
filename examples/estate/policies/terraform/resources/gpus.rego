# GPU machines are expensive and scarce: only the approved types (data.terraform.approved_gpu_types)
# are created. A type is a GPU type by its family: AWS p and g instances, Google a2, a3, g2 and
# machines with guest accelerators, Azure N-series.
package terraform.resources.gpus

import rego.v1

after := object.get(input.change, "after", {})

approved := {t | some t in data.terraform.approved_gpu_types}

creates_or_updates if {
	some action in input.change.actions
	action in {"create", "update"}
}

# The machine types a resource asks for.
types contains t if {
	input.type in {"aws_instance", "aws_spot_instance_request", "aws_launch_template"}
	t := after.instance_type
}

types contains t if {
	input.type == "aws_eks_node_group"
	some t in object.get(after, "instance_types", [])
}

types contains t if {
	input.type in {"google_compute_instance", "google_compute_instance_template"}
	t := after.machine_type
}

types contains t if {
	input.type == "google_container_node_pool"
	some config in object.get(after, "node_config", [])
	t := config.machine_type
}

types contains t if {
	input.type in {"azurerm_linux_virtual_machine", "azurerm_windows_virtual_machine", "azurerm_virtual_machine"}
	t := object.get(after, "size", object.get(after, "vm_size", ""))
}

types contains t if {
	input.type == "azurerm_kubernetes_cluster_node_pool"
	t := after.vm_size
}

gpu_type(t) if regex.match(`^(p[0-9]|g[0-9])[a-z0-9-]*\.`, t)

gpu_type(t) if regex.match(`^(a2|a3|g2)-`, t)

gpu_type(t) if regex.match(`^Standard_N[CDV]`, t)

deny contains msg if {
	creates_or_updates
	some t in types
	gpu_type(t)
	not t in approved
	msg := sprintf("%s asks for GPU type %s, which is not approved (%s)", [input.address, t, concat(", ", sort(approved))])
}

package terraform.resources.gpus_test

import rego.v1

import data.terraform.resources.gpus

change(type, after) := {"address": "a.b", "type": type, "change": {"actions": ["create"], "after": after}}

test_unapproved_gpu_denied if {
	count(gpus.deny) == 1 with input as change("aws_instance", {"instance_type": "p5.48xlarge"})
		with data.terraform.approved_gpu_types as ["g5.xlarge"]
}

test_approved_gpu_allowed if {
	count(gpus.deny) == 0 with input as change("aws_instance", {"instance_type": "g5.xlarge"})
		with data.terraform.approved_gpu_types as ["g5.xlarge"]
}

test_cpu_instance_ignored if {
	count(gpus.deny) == 0 with input as change("aws_instance", {"instance_type": "m5.4xlarge"})
		with data.terraform.approved_gpu_types as []
}

test_node_pools if {
	count(gpus.deny) == 1 with input as change("aws_eks_node_group", {"instance_types": ["m5.large", "p4d.24xlarge"]})
		with data.terraform.approved_gpu_types as ["g5.xlarge"]
}

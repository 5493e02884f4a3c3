package k8s.limits_test

import rego.v1

import data.k8s.limits

deployment(containers) := {"request": {
	"kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
	"object": {"spec": {"template": {"spec": {"containers": containers}}}},
}}

test_limits_set_pass if {
	count(limits.deny) == 0 with input as deployment([{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}])
}

test_missing_memory_limit_denied if {
	limits.deny == {"container \"app\" has no memory limit"} with input as deployment([{"name": "app", "resources": {"limits": {"cpu": "1"}}}])
}

test_no_resources_denied_twice if {
	count(limits.deny) == 2 with input as deployment([{"name": "app"}])
}

test_init_containers_checked if {
	inp := {"request": {
		"kind": {"kind": "Deployment"},
		"object": {"spec": {"template": {"spec": {
			"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
			"initContainers": [{"name": "fetch-weights", "resources": {"limits": {"cpu": "1"}}}],
		}}}},
	}}
	limits.deny == {"container \"fetch-weights\" has no memory limit"} with input as inp
}

test_other_kinds_ignored if {
	count(limits.deny) == 0 with input as {"request": {"kind": {"kind": "Pod"}, "object": {"spec": {"containers": [{"name": "x"}]}}}}
}

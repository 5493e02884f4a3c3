package k8s.labels_test

import rego.v1

import data.k8s.labels

deployment(meta) := {"request": {"kind": {"kind": "Deployment"}, "object": {"metadata": meta, "spec": {"replicas": 3}}}}

test_good_cost_center_passes if {
	count(labels.deny) == 0 with input as deployment({"labels": {"finops.example.com/cost-center": "CC-1042"}})
}

test_missing_cost_center_denied if {
	labels.deny == {"Deployment must carry the finops.example.com/cost-center label"} with input as deployment({})
}

test_malformed_cost_center_denied if {
	some msg in labels.deny with input as deployment({"labels": {"finops.example.com/cost-center": "finance"}})
	contains(msg, "does not match CC-<4 digits>")
}

test_multimodal_needs_annotation if {
	meta := {"labels": {"finops.example.com/cost-center": "CC-1042", "ai.example.com/model-type": "multimodal"}}
	count(labels.deny) == 1 with input as deployment(meta)
}

test_multimodal_with_annotation_passes if {
	meta := {
		"labels": {"finops.example.com/cost-center": "CC-1042", "ai.example.com/model-type": "multimodal"},
		"annotations": {"ai.example.com/responsible-ai-model-id": "RAI-7"},
	}
	count(labels.deny) == 0 with input as deployment(meta)
}

test_single_replica_warns if {
	inp := {"request": {"kind": {"kind": "Deployment"}, "object": {"metadata": {}, "spec": {"replicas": 1}}}}
	count(labels.warn) == 1 with input as inp
}

package k8s.cost_test

import rego.v1

import data.k8s.cost

review(monthly, annotations) := {
	"request": {"kind": {"kind": "Deployment"}, "object": {"metadata": {"annotations": annotations}}},
	"cost": {"currency": "USD", "workload": {"monthly": monthly, "basis": "3 replicas all month"}},
}

test_expensive_workload_without_approval_warns if {
	cost.warn == {"estimated 2500.50 USD a month (3 replicas all month) without a finops.example.com/approved-by annotation"} with input as review(2500.5, {})
}

test_approved_expensive_workload_passes if {
	count(cost.warn) == 0 with input as review(2500, {"finops.example.com/approved-by": "jane"})
}

test_cheap_or_unpriced_workload_passes if {
	count(cost.warn) == 0 with input as review(100, {})
	count(cost.warn) == 0 with input as {"request": {"object": {}}}
}

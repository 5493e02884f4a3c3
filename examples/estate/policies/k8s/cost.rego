# Cost rules on input.cost, which `assay check` fills from pricing/ and budgets/: a workload
# estimated above 2,000 a month needs a FinOps approval, and no change may push a deny budget over.
package k8s.cost

import rego.v1

approval_annotation := "finops.example.com/approved-by"

workload := object.get(input, ["cost", "workload"], {})

annotations := object.get(input.request.object, ["metadata", "annotations"], {})

warn contains msg if {
	workload.monthly > 2000
	not annotations[approval_annotation]
	msg := sprintf(
		"estimated %.2f %s a month (%s) without a %s annotation",
		[workload.monthly, input.cost.currency, workload.basis, approval_annotation],
	)
}

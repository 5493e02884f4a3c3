# Every Deployment names the cost center that pays for it, so FinOps can allocate spend;
# multimodal models must be traceable to their responsible-AI review.
package k8s.labels

import rego.v1

cost_center_label := "finops.example.com/cost-center"

model_type_label := "ai.example.com/model-type"

responsible_ai_annotation := "ai.example.com/responsible-ai-model-id"

is_deployment if input.request.kind.kind == "Deployment"

metadata := object.get(input.request.object, "metadata", {})

labels := object.get(metadata, "labels", {})

annotations := object.get(metadata, "annotations", {})

deny contains msg if {
	is_deployment
	not labels[cost_center_label]
	msg := sprintf("Deployment must carry the %s label", [cost_center_label])
}

deny contains msg if {
	is_deployment
	value := labels[cost_center_label]
	not regex.match(`^CC-[0-9]{4}$`, value)
	msg := sprintf("label %s=%q does not match CC-<4 digits>", [cost_center_label, value])
}

deny contains msg if {
	is_deployment
	labels[model_type_label] == "multimodal"
	not annotations[responsible_ai_annotation]
	msg := sprintf("multimodal model Deployment must carry the %s annotation", [responsible_ai_annotation])
}

warn contains msg if {
	is_deployment
	input.request.object.spec.replicas == 1
	msg := "Deployment runs a single replica: no redundancy during node maintenance"
}

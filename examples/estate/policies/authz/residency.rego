# Data-residency authorization, served to API gateways and applications the way OPA serves
# decisions (POST /v1/data/authz/residency/allow). A request may store or process data only in
# a region where its classification is allowed (data.allowed_regions); inference is allowed
# only when the user and the model are in the same region and that region is allowed.
package authz.residency

import rego.v1

default allow := false

allow if {
	input.action in {"store", "process"}
	region_allowed(input.data.classification, input.region)
}

allow if {
	input.action == "inference"
	input.user.region == input.model.region
	region_allowed(input.data.classification, input.model.region)
}

region_allowed(classification, region) if region in data.allowed_regions[classification]

region_allowed(classification, _) if "*" in data.allowed_regions[classification]

# Why a request is refused, for the caller's logs.
reasons contains msg if {
	not data.allowed_regions[input.data.classification]
	msg := sprintf("unknown data classification %q", [input.data.classification])
}

reasons contains msg if {
	input.action in {"store", "process"}
	data.allowed_regions[input.data.classification]
	not region_allowed(input.data.classification, input.region)
	msg := sprintf("%s data may not be %sd in %s", [input.data.classification, input.action, input.region])
}

reasons contains msg if {
	input.action == "inference"
	input.user.region != input.model.region
	msg := sprintf("user region %s differs from model region %s", [input.user.region, input.model.region])
}

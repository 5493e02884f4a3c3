# Event policy: evaluated by `assay serve` on every CloudEvent posted to /v1/events (not on
# manifests). A cloud audit event that copies an object out of a bucket holding classified data
# into a region where that classification may not be stored is a finding; it asks for the copy
# to be quarantined. Buckets and their classification are in data.buckets (policies/data.yaml).
package assay.events

import rego.v1

# CloudTrail records delivered as CloudEvents (for example by EventBridge), with the record as
# the event's data.
copy := {"source": source, "target": target, "key": input.data.requestParameters.key} if {
	input.data.eventSource == "s3.amazonaws.com"
	input.data.eventName in {"CopyObject", "UploadPartCopy"}
	source := split(trim_prefix(input.data.requestParameters["x-amz-copy-source"], "/"), "/")[0]
	target := input.data.requestParameters.bucketName
}

findings contains finding if {
	from := data.buckets[copy.source]
	to := data.buckets[copy.target]
	not region_allowed(from.classification, to.region)
	finding := {
		"msg": sprintf("%s data copied from %s (%s) to %s (%s), where it may not be stored", [
			from.classification, copy.source, from.region, copy.target, to.region,
		]),
		"severity": "high",
		"actor": object.get(input.data, ["userIdentity", "arn"], "unknown"),
		"quarantine": {"resource": sprintf("arn:aws:s3:::%s/%s", [copy.target, copy.key])},
	}
}

findings contains finding if {
	from := data.buckets[copy.source]
	not data.buckets[copy.target]
	not "*" in data.allowed_regions[from.classification]
	finding := {
		"msg": sprintf("%s data copied from %s to %s, a bucket the estate does not know", [
			from.classification, copy.source, copy.target,
		]),
		"severity": "medium",
	}
}

region_allowed(classification, region) if region in data.allowed_regions[classification]

region_allowed(classification, _) if "*" in data.allowed_regions[classification]

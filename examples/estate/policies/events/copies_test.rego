package assay.events_test

import rego.v1

import data.assay.events

copy_event(from, to) := {
	"specversion": "1.0",
	"id": "1",
	"source": "aws.s3",
	"type": "aws.cloudtrail.api-call",
	"data": {
		"eventSource": "s3.amazonaws.com",
		"eventName": "CopyObject",
		"awsRegion": "us-east-1",
		"userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"},
		"requestParameters": {"bucketName": to, "key": "exports/customers.parquet", "x-amz-copy-source": sprintf("%s/raw/customers.parquet", [from])},
	},
}

test_gdpr_copy_to_us_is_a_finding_with_quarantine if {
	some f in events.findings with input as copy_event("acme-customer-data-eu", "acme-analytics-us")
	f.severity == "high"
	f.quarantine.resource == "arn:aws:s3:::acme-analytics-us/exports/customers.parquet"
}

test_gdpr_copy_within_the_eu_is_fine if {
	count(events.findings) == 0 with input as copy_event("acme-customer-data-eu", "acme-features-eu")
}

test_copy_to_an_unknown_bucket_is_a_medium_finding if {
	some f in events.findings with input as copy_event("acme-customer-data-eu", "somewhere-else")
	f.severity == "medium"
}

test_public_data_may_go_anywhere if {
	count(events.findings) == 0 with input as copy_event("acme-public-datasets", "somewhere-else")
}

package authz.residency_test

import rego.v1

import data.authz.residency

test_gdpr_store_in_eu_allowed if {
	residency.allow with input as {"action": "store", "data": {"classification": "GDPR_SENSITIVE"}, "region": "eu-west-1"}
}

test_gdpr_store_in_us_denied if {
	not residency.allow with input as {"action": "store", "data": {"classification": "GDPR_SENSITIVE"}, "region": "us-east-1"}
}

test_gdpr_store_in_us_reason if {
	residency.reasons == {"GDPR_SENSITIVE data may not be stored in us-east-1"} with input as {"action": "store", "data": {"classification": "GDPR_SENSITIVE"}, "region": "us-east-1"}
}

test_public_anywhere if {
	residency.allow with input as {"action": "process", "data": {"classification": "PUBLIC"}, "region": "ap-south-1"}
}

test_inference_same_allowed_region if {
	residency.allow with input as {"action": "inference", "data": {"classification": "GDPR_SENSITIVE"}, "user": {"region": "eu-central-1"}, "model": {"region": "eu-central-1"}}
}

test_inference_cross_region_denied if {
	not residency.allow with input as {"action": "inference", "data": {"classification": "PUBLIC"}, "user": {"region": "eu-west-1"}, "model": {"region": "us-east-1"}}
}

test_unknown_classification_denied if {
	not residency.allow with input as {"action": "store", "data": {"classification": "SECRET_SAUCE"}, "region": "eu-west-1"}
}

test_allowed_regions_can_be_replaced if {
	residency.allow with input as {"action": "store", "data": {"classification": "GDPR_SENSITIVE"}, "region": "us-east-1"}
		with data.allowed_regions as {"GDPR_SENSITIVE": ["us-east-1"]}
}

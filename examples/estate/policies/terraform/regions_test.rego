package terraform.regions_test

import rego.v1

import data.terraform.regions

plan(region, type) := {
	"configuration": {
		"provider_config": {"aws": {"expressions": {"region": {"constant_value": region}}}},
		"root_module": {"resources": [{"address": "x.y", "provider_config_key": "aws"}]},
	},
	"resource_changes": [{
		"address": "x.y", "mode": "managed", "type": type,
		"change": {"actions": ["create"], "after": {"bucket": "b"}},
	}],
}

test_us_bucket_denied if {
	count(regions.deny) == 1 with input as plan("us-east-1", "aws_s3_bucket")
		with data.terraform.eu_regions as ["eu-west-1"]
}

test_eu_bucket_allowed if {
	count(regions.deny) == 0 with input as plan("eu-west-1", "aws_s3_bucket")
		with data.terraform.eu_regions as ["eu-west-1"]
}

test_compute_anywhere if {
	count(regions.deny) == 0 with input as plan("us-east-1", "aws_instance")
		with data.terraform.eu_regions as ["eu-west-1"]
}

test_google_location if {
	p := {"resource_changes": [{
		"address": "google_storage_bucket.b", "mode": "managed", "type": "google_storage_bucket",
		"change": {"actions": ["create"], "after": {"location": "US"}},
	}]}
	count(regions.deny) == 1 with input as p with data.terraform.eu_regions as ["europe-west4", "eu"]
}

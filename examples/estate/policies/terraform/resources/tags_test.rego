package terraform.resources.tags_test

import rego.v1

import data.terraform.resources.tags

change(after) := {"address": "aws_s3_bucket.b", "mode": "managed", "change": {"actions": ["create"], "after": after}}

test_untagged_denied if {
	count(tags.deny) == 1 with input as change({"bucket": "b", "tags": null})
}

test_tagged_allowed if {
	count(tags.deny) == 0 with input as change({"bucket": "b", "tags": {"cost-center": "CC-1042"}})
}

test_default_tags_count if {
	count(tags.deny) == 0 with input as change({"tags": {}, "tags_all": {"cost-center": "CC-1042"}})
}

test_untaggable_ignored if {
	count(tags.deny) == 0 with input as change({"policy": "{}"})
}

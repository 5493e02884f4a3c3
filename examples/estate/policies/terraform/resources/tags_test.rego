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

test_listed_type_without_tags_denied if {
	count(tags.deny) == 1 with input as object.union(change({"bucket": "b"}), {"type": "aws_s3_bucket"})
		with data.terraform.taggable_types as ["aws_s3_bucket"]
}

test_unknown_tags_not_judged if {
	c := {"address": "a.b", "mode": "managed", "type": "aws_s3_bucket", "change": {"actions": ["create"], "after": {}, "after_unknown": {"tags": true}}}
	count(tags.deny) == 0 with input as c with data.terraform.taggable_types as ["aws_s3_bucket"]
}

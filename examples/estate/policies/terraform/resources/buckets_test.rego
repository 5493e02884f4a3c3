package terraform.resources.buckets_test

import rego.v1

import data.terraform.resources.buckets

change(type, after) := {"address": "a.b", "type": type, "change": {"actions": ["create"], "after": after}}

test_public_acl_denied if {
	count(buckets.deny) == 1 with input as change("aws_s3_bucket", {"acl": "public-read"})
}

test_private_acl_allowed if {
	count(buckets.deny) == 0 with input as change("aws_s3_bucket", {"acl": "private"})
}

test_access_block_off_denied if {
	count(buckets.deny) == 2 with input as change(
		"aws_s3_bucket_public_access_block",
		{"block_public_acls": false, "block_public_policy": false, "ignore_public_acls": true, "restrict_public_buckets": true},
	)
}

test_all_users_denied if {
	count(buckets.deny) == 1 with input as change("google_storage_bucket_iam_member", {"member": "allUsers"})
}

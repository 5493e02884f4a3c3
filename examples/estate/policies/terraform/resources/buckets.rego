# No bucket is readable by the world: no public ACL, no public access block switched off, no
# grant to all users.
package terraform.resources.buckets

import rego.v1

after := object.get(input.change, "after", {})

public_acls := {"public-read", "public-read-write", "authenticated-read"}

creates_or_updates if {
	some action in input.change.actions
	action in {"create", "update"}
}

deny contains msg if {
	creates_or_updates
	input.type in {"aws_s3_bucket", "aws_s3_bucket_acl"}
	after.acl in public_acls
	msg := sprintf("%s is public (acl %s)", [input.address, after.acl])
}

deny contains msg if {
	creates_or_updates
	input.type == "aws_s3_bucket_public_access_block"
	some setting in ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]
	after[setting] == false
	msg := sprintf("%s switches %s off: the bucket can be made public", [input.address, setting])
}

deny contains msg if {
	creates_or_updates
	input.type in {"google_storage_bucket_iam_member", "google_storage_bucket_iam_binding"}
	some member in array.concat([object.get(after, "member", "")], object.get(after, "members", []))
	member in {"allUsers", "allAuthenticatedUsers"}
	msg := sprintf("%s grants %s on the bucket", [input.address, member])
}

deny contains msg if {
	creates_or_updates
	input.type == "azurerm_storage_container"
	after.container_access_type in {"blob", "container"}
	msg := sprintf("%s is public (container_access_type %s)", [input.address, after.container_access_type])
}

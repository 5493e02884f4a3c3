# Every resource that takes tags (or Google labels) names the cost center that pays for it, so
# that FinOps can allocate its spend. Judged one resource change at a time: `input` is one
# element of the plan's `resource_changes`.
package terraform.resources.tags

import rego.v1

cost_center := "cost-center"

after := object.get(input.change, "after", {})

creates_or_updates if {
	some action in input.change.actions
	action in {"create", "update"}
}

# A map attribute, or an empty one when it is absent or null.
map_of(key) := after[key] if is_object(after[key])

else := {}

# The provider's default tags land in `tags_all`; Google's resources carry `labels`.
tag_keys contains k if {
	some attribute in ["tags_all", "tags", "labels"]
	some k, _ in map_of(attribute)
}

taggable if object.get(after, "tags", null) != null

taggable if "tags" in object.keys(after)

taggable if "labels" in object.keys(after)

deny contains msg if {
	input.mode == "managed"
	creates_or_updates
	taggable
	not cost_center in tag_keys
	msg := sprintf("%s has no %s tag: its spend cannot be allocated", [input.address, cost_center])
}

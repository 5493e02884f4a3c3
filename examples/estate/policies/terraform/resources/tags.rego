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

# Worked out from `.tf` files alone, an untagged resource has no `tags` attribute at all: the
# types known to take tags are listed (data.terraform.taggable_types).
taggable if input.type in {t | some t in data.terraform.taggable_types}

taggable if "tags" in object.keys(after)

taggable if "labels" in object.keys(after)

# Tags known only after apply (built from another resource's attributes, or from a variable
# without a value) are not judged. (`tags_all` is unknown in most plans: the provider adds its
# default tags at apply.)
unknown_tags if {
	some attribute in ["tags", "labels"]
	object.get(object.get(input.change, "after_unknown", {}), attribute, false) == true
}

deny contains msg if {
	input.mode == "managed"
	creates_or_updates
	taggable
	not unknown_tags
	not cost_center in tag_keys
	msg := sprintf("%s has no %s tag: its spend cannot be allocated", [input.address, cost_center])
}

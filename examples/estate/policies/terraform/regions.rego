# Data stores hold customer data: they are created only in EU regions (GDPR). Read from the
# plan as conftest reads it: `input` is `terraform show -json` output. The region of an AWS
# resource is its own `region` (AWS provider 6) or its provider's; Google and Azure resources
# carry a location.
package terraform.regions

import rego.v1

data_stores := {
	"aws_s3_bucket", "aws_db_instance", "aws_rds_cluster", "aws_dynamodb_table", "aws_efs_file_system",
	"aws_redshift_cluster", "aws_elasticache_cluster", "aws_opensearch_domain",
	"google_storage_bucket", "google_sql_database_instance", "google_bigquery_dataset", "google_spanner_instance",
	"azurerm_storage_account", "azurerm_mssql_server", "azurerm_postgresql_flexible_server",
	"azurerm_cosmosdb_account",
}

eu_regions := {r | some r in data.terraform.eu_regions}

# The provider configuration a resource uses (`aws`, or `aws.<alias>`).
provider_key(address) := key if {
	some r in input.configuration.root_module.resources
	r.address == address
	key := r.provider_config_key
} else := "aws"

region(rc) := rc.change.after.region if {
	rc.change.after.region
} else := lower(replace(rc.change.after.location, " ", "")) if {
	rc.change.after.location
} else := input.configuration.provider_config[provider_key(rc.address)].expressions.region.constant_value

# Region names without their zone letter: `eu-west-1a` is in `eu-west-1`; Google's
# `europe-west4` and Azure's `westeurope` are listed as they are written.
in_eu(r) if r in eu_regions

in_eu(r) if {
	some eu in eu_regions
	startswith(r, eu)
	count(r) == count(eu) + 1
}

deny contains msg if {
	some rc in input.resource_changes
	rc.mode == "managed"
	rc.type in data_stores
	some action in rc.change.actions
	action in {"create", "update"}
	r := region(rc)
	not in_eu(r)
	msg := sprintf("%s stores data in %s: data stores must be in an EU region", [rc.address, r])
}

# The training platform's AWS side, checked with the manifests: `assay check` works out the plan
# from these files (no `terraform plan` needed), judges it with policies/terraform and prices it
# with pricing/list-prices.yaml.
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region = var.region
}

locals {
  tags = { "cost-center" = "CC-3001", team = "ml-platform" }
}

resource "aws_instance" "trainer" {
  count         = var.trainers
  ami           = data.aws_ami.deep_learning.id
  instance_type = "g5.xlarge"
  tags          = merge(local.tags, { Name = "trainer-${count.index}" })

  root_block_device {
    volume_type = "gp3"
    volume_size = 200
  }
}

resource "aws_s3_bucket" "features" {
  bucket = "acme-features-eu"
  tags   = local.tags
}

resource "aws_nat_gateway" "egress" {
  allocation_id = "eipalloc-0123456789abcdef0"
  subnet_id     = "subnet-0123456789abcdef0"
  tags          = local.tags
}

data "aws_ami" "deep_learning" {
  most_recent = true
  owners      = ["amazon"]
}

terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables: admin_cidrs is checked against allow_ssh_from_anywhere.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Exact pin, so every operator plans with the provider this code was
      # written against. Bump it on purpose, read the changelog, and commit the
      # .terraform.lock.hcl that `terraform init` writes (it adds checksums).
      version = "6.22.0"
    }
  }

  # State is local (terraform/terraform.tfstate, gitignored) by default: one
  # operator, one appliance. For a team, keep it in S3 instead: uncomment, fill
  # in, and run `terraform -chdir=terraform init -migrate-state`. use_lockfile
  # (Terraform >= 1.10) locks the state with an S3 object, no DynamoDB needed.
  #
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "clickstream/appliance.tfstate"
  #   region       = "us-west-2"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  # Every resource that takes tags gets these; the dynamic inventory
  # (inventories/aws/aws_ec2.yml) finds the host by them.
  default_tags {
    tags = local.tags
  }
}

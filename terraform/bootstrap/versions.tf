terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.83"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "ledger"
      managed-by = "terraform"
      stack      = "terraform-state"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# For the gp3 StorageClass: authenticates with the caller's AWS credentials (aws CLI), so
# no token lands in the state.
provider "kubernetes" {
  host                   = module.cluster.cluster_endpoint
  cluster_ca_certificate = base64decode(module.cluster.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.cluster.cluster_name, "--region", var.region]
  }
}

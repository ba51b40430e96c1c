# EKS with managed node groups, the add-ons the ledger needs, and the IRSA roles of those
# add-ons:
# - one node group per zone, so a replaced node comes back in the zone of the voter's EBS
#   volume (a volume cannot follow a pod into another zone);
# - vpc-cni with network policy enforcement on (the chart's NetworkPolicy restricts the
#   Raft port to the voters), aws-ebs-csi-driver for the gp3 PVCs, and
#   amazon-cloudwatch-observability for Container Insights (the CloudWatch alarms' metrics);
# - IRSA roles for the EBS CSI driver, the CloudWatch agent and the AWS Load Balancer
#   Controller (installed with Helm: README "Operations").

module "eks" {
  #checkov:skip=CKV_TF_1:A Terraform Registry module from the terraform-aws-modules namespace, pinned to a major version; the registry serves no commit hashes (run `terraform init -upgrade` deliberately)
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.31"

  cluster_name    = var.name
  cluster_version = var.kubernetes_version

  vpc_id     = var.vpc_id
  subnet_ids = var.private_subnet_ids

  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = length(var.endpoint_public_access_cidrs) > 0
  cluster_endpoint_public_access_cidrs = var.endpoint_public_access_cidrs

  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = true
  enable_irsa                              = true

  create_kms_key = false
  cluster_encryption_config = {
    resources        = ["secrets"]
    provider_key_arn = var.kms_key_arn
  }

  cluster_enabled_log_types              = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = 365
  cloudwatch_log_group_kms_key_id        = var.kms_key_arn

  cluster_addons = {
    coredns    = { most_recent = true }
    kube-proxy = { most_recent = true }
    vpc-cni = {
      most_recent    = true
      before_compute = true
      configuration_values = jsonencode({
        enableNetworkPolicy = "true"
      })
    }
    aws-ebs-csi-driver = {
      most_recent              = true
      service_account_role_arn = module.ebs_csi_irsa.iam_role_arn
    }
    amazon-cloudwatch-observability = {
      most_recent              = true
      service_account_role_arn = module.cloudwatch_irsa.iam_role_arn
    }
  }

  eks_managed_node_groups = {
    for index, subnet_id in var.private_subnet_ids : "ledger-${index}" => {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.node_instance_types
      subnet_ids     = [subnet_id]
      desired_size   = var.nodes_per_zone.desired
      min_size       = var.nodes_per_zone.min
      max_size       = var.nodes_per_zone.max

      # Root volumes hold images and logs, no ledger data; AWS's EBS key encrypts them (a
      # customer key here would need the Auto Scaling service-linked role in its policy).
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = var.node_volume_gib
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }

      # IMDSv2 only, one hop: pods cannot borrow the node's role (they use IRSA).
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }

      labels = {
        "ledger/workload" = "ledger"
      }
    }
  }

  tags = var.tags
}

module "ebs_csi_irsa" {
  #checkov:skip=CKV_TF_1:A Terraform Registry module from the terraform-aws-modules namespace, pinned to a major version; the registry serves no commit hashes (run `terraform init -upgrade` deliberately)
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.39"

  role_name             = "${var.name}-ebs-csi"
  attach_ebs_csi_policy = true
  ebs_csi_kms_cmk_ids   = [var.kms_key_arn]

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:ebs-csi-controller-sa"]
    }
  }

  tags = var.tags
}

module "cloudwatch_irsa" {
  #checkov:skip=CKV_TF_1:A Terraform Registry module from the terraform-aws-modules namespace, pinned to a major version; the registry serves no commit hashes (run `terraform init -upgrade` deliberately)
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.39"

  role_name                              = "${var.name}-cloudwatch-agent"
  attach_cloudwatch_observability_policy = true

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["amazon-cloudwatch:cloudwatch-agent"]
    }
  }

  tags = var.tags
}

module "load_balancer_controller_irsa" {
  #checkov:skip=CKV_TF_1:A Terraform Registry module from the terraform-aws-modules namespace, pinned to a major version; the registry serves no commit hashes (run `terraform init -upgrade` deliberately)
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.39"

  role_name                              = "${var.name}-aws-load-balancer-controller"
  attach_load_balancer_controller_policy = true

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:aws-load-balancer-controller"]
    }
  }

  tags = var.tags
}

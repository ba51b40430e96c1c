# The voters' volumes: gp3 through the EBS CSI driver, encrypted with the environment's
# key, bound where the pod is scheduled (WaitForFirstConsumer: the volume lands in the
# voter's zone), expandable, and kept when the claim goes (Retain: a voter's disk is its
# vote history and its copy of the ledger; delete it deliberately).
resource "kubernetes_storage_class_v1" "gp3" {
  metadata {
    name = "gp3"
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Retain"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true

  parameters = {
    type      = "gp3"
    fsType    = "ext4"
    encrypted = "true"
    kmsKeyId  = module.kms.key_arn
    # gp3's baseline; raise both for a busier ledger (every commit is an fsync).
    iops       = "3000"
    throughput = "125"
  }
}

# CloudWatch alarms of the original design, on Container Insights metrics (the
# amazon-cloudwatch-observability add-on): CPU > 80% for 5 minutes, memory > 60% for 5
# minutes, more than one restart in 10 minutes, a node NotReady for 5 minutes, and p99
# API latency > 2 s for 5 minutes (on the ALB in front of the API, once it exists). Each
# notifies one SNS topic. The Raft-specific alerts (no leader, follower lag, archiver lag)
# need the ledger's own metrics and live in the chart's PrometheusRule.
# README "Operations" says what each alarm means and what to do.

locals {
  pod_dimensions = {
    ClusterName = var.cluster_name
    Namespace   = var.namespace
    PodName     = var.workload_name
  }
  actions = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "cpu" {
  alarm_name          = "${var.name}-ledger-cpu"
  alarm_description   = "A ledger voter used more than ${var.thresholds.cpu_percent}% of its CPU limit for 5 minutes (README Operations: LedgerHighCpu)."
  namespace           = "ContainerInsights"
  metric_name         = "pod_cpu_utilization_over_pod_limit"
  dimensions          = local.pod_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.cpu_percent
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "memory" {
  alarm_name          = "${var.name}-ledger-memory"
  alarm_description   = "A ledger voter used more than ${var.thresholds.memory_percent}% of its memory limit for 5 minutes (README Operations: LedgerHighMemory)."
  namespace           = "ContainerInsights"
  metric_name         = "pod_memory_utilization_over_pod_limit"
  dimensions          = local.pod_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.memory_percent
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# pod_number_of_container_restarts is a running total; its change over one 10-minute
# period is the restarts in those 10 minutes.
resource "aws_cloudwatch_metric_alarm" "restarts" {
  alarm_name          = "${var.name}-ledger-restarts"
  alarm_description   = "Ledger voters restarted more than ${var.thresholds.restarts_in_10m} time(s) in 10 minutes (README Operations: LedgerRestarts)."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.restarts_in_10m
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "restarts"
    expression  = "DIFF(total)"
    label       = "Restarts in 10 minutes"
    return_data = true
  }

  metric_query {
    id = "total"
    metric {
      namespace   = "ContainerInsights"
      metric_name = "pod_number_of_container_restarts"
      dimensions  = local.pod_dimensions
      stat        = "Maximum"
      period      = 600
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "node_not_ready" {
  alarm_name          = "${var.name}-node-not-ready"
  alarm_description   = "A node of ${var.cluster_name} was NotReady for 5 minutes; the voter on it is down (README Operations: node NotReady)."
  namespace           = "ContainerInsights"
  metric_name         = "cluster_failed_node_count"
  dimensions          = { ClusterName = var.cluster_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "latency" {
  count = var.alb_arn_suffix == "" ? 0 : 1

  alarm_name          = "${var.name}-ledger-latency-p99"
  alarm_description   = "p99 API latency above ${var.thresholds.latency_p99_second} s for 5 minutes: more than 1% of requests were that slow (README Operations: LedgerHighLatency)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.latency_p99_second
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

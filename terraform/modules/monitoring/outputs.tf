output "topic_arn" {
  description = "SNS topic every alarm notifies (subscribe a pager or Alertmanager's SNS receiver)."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.cpu.alarm_name,
      aws_cloudwatch_metric_alarm.memory.alarm_name,
      aws_cloudwatch_metric_alarm.restarts.alarm_name,
      aws_cloudwatch_metric_alarm.node_not_ready.alarm_name,
    ],
    aws_cloudwatch_metric_alarm.latency[*].alarm_name,
  )
}

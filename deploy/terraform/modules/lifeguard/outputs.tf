output "instance_profile_arn" {
  description = "Give it to the launch template."
  value       = aws_iam_instance_profile.instance.arn
}

output "lifecycle_queue_url" {
  description = "The agents' sqs.queue_url."
  value       = aws_sqs_queue.lifecycle.url
}

output "lease_table_name" {
  description = "The agents' leader.table."
  value       = aws_dynamodb_table.lease.name
}

output "notification_topic_arn" {
  value = aws_sns_topic.notifications.arn
}

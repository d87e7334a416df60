# lifeguard for one EC2 Auto Scaling group: the same resources as
# deploy/cloudformation/lifeguard.yaml. See deploy/terraform/README.md.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  arn_prefix = "${data.aws_partition.current.partition}:%s:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  instances  = "arn:${format(local.arn_prefix, "ec2")}:instance/*"
}

resource "aws_dynamodb_table" "lease" {
  name         = var.lease_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  lifecycle {
    prevent_destroy = true
  }
}

# The group's launch and termination notifications: the controller's feed.
resource "aws_sns_topic" "notifications" {
  name = "${var.group_name}-lifeguard-notifications"
}

# The lifecycle hooks' target, shared by the group's agents (sqs.queue_url).
resource "aws_sqs_queue" "lifecycle" {
  name                       = "${var.group_name}-lifecycle"
  message_retention_seconds  = 172800
  visibility_timeout_seconds = 30
}

resource "aws_iam_role" "hook" {
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "autoscaling.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "hook" {
  role       = aws_iam_role.hook.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AutoScalingNotificationAccessRole"
}

resource "aws_autoscaling_group" "group" {
  name                = var.group_name
  min_size            = var.min_size
  max_size            = var.max_size
  vpc_zone_identifier = var.subnet_ids

  launch_template {
    id      = var.launch_template_id
    version = var.launch_template_version
  }

  # Opts the group in to the controller; on the instances too, for the
  # condition of the controller's tag writes.
  tag {
    key                 = "lifeguard:controller"
    value               = "enabled"
    propagate_at_launch = true
  }
}

resource "aws_autoscaling_notification" "group" {
  group_names = [aws_autoscaling_group.group.name]
  topic_arn   = aws_sns_topic.notifications.arn
  notifications = [
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
  ]
}

resource "aws_autoscaling_lifecycle_hook" "launch" {
  autoscaling_group_name  = aws_autoscaling_group.group.name
  name                    = "lifeguard-launch"
  lifecycle_transition    = "autoscaling:EC2_INSTANCE_LAUNCHING"
  default_result          = "ABANDON"
  heartbeat_timeout       = 900
  notification_target_arn = aws_sqs_queue.lifecycle.arn
  role_arn                = aws_iam_role.hook.arn
  # Auto Scaling sends a test message when the hook is made.
  depends_on = [aws_iam_role_policy_attachment.hook]
}

resource "aws_autoscaling_lifecycle_hook" "terminate" {
  autoscaling_group_name  = aws_autoscaling_group.group.name
  name                    = "lifeguard-terminate"
  lifecycle_transition    = "autoscaling:EC2_INSTANCE_TERMINATING"
  default_result          = "CONTINUE"
  heartbeat_timeout       = 600
  notification_target_arn = aws_sqs_queue.lifecycle.arn
  role_arn                = aws_iam_role.hook.arn
  # Auto Scaling sends a test message when the hook is made.
  depends_on = [aws_iam_role_policy_attachment.hook]
}

# The agent's instance role: `lifeguard iam-policy --config agent.yaml --group GROUP`
# for the configuration in deploy/user-data/al2023.sh.
resource "aws_iam_role" "instance" {
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "instance" {
  name = "lifeguard-agent"
  role = aws_iam_role.instance.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Read"
        Effect   = "Allow"
        Action   = ["autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks"]
        Resource = "*"
      },
      {
        Sid      = "LifecycleActions"
        Effect   = "Allow"
        Action   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
        Resource = "arn:${format(local.arn_prefix, "autoscaling")}:autoScalingGroup:*:autoScalingGroupName/${var.group_name}"
      },
      {
        Sid      = "LifecycleQueue"
        Effect   = "Allow"
        Action   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
        Resource = aws_sqs_queue.lifecycle.arn
      },
      {
        Sid      = "LeaderLease"
        Effect   = "Allow"
        Action   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
        Resource = aws_dynamodb_table.lease.arn
      },
      {
        # Followers get leader=false: no ec2:DeleteTags.
        Sid      = "LeaderTag"
        Effect   = "Allow"
        Action   = ["ec2:CreateTags"]
        Resource = local.instances
        Condition = {
          StringEquals                = { "ec2:ResourceTag/aws:autoscaling:groupName" = var.group_name }
          "ForAllValues:StringEquals" = { "aws:TagKeys" = [var.leader_tag_key] }
        }
      },
    ]
  })
}

resource "aws_iam_instance_profile" "instance" {
  role = aws_iam_role.instance.name
}

# The controller: `lifeguard iam-policy --controller --lease-table TABLE`.
resource "aws_iam_role" "controller" {
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "controller_logs" {
  role       = aws_iam_role.controller.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy" "controller" {
  name = "lifeguard-controller"
  role = aws_iam_role.controller.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Read"
        Effect   = "Allow"
        Action   = ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLifecycleHooks", "ec2:DescribeInstances"]
        Resource = "*"
      },
      {
        Sid      = "LeaderTag"
        Effect   = "Allow"
        Action   = ["ec2:CreateTags", "ec2:DeleteTags"]
        Resource = local.instances
        Condition = {
          StringEquals                = { "ec2:ResourceTag/lifeguard:controller" = "enabled" }
          "ForAllValues:StringEquals" = { "aws:TagKeys" = ["app:isLeader"] }
        }
      },
      {
        Sid       = "ReapActions"
        Effect    = "Allow"
        Action    = ["autoscaling:CompleteLifecycleAction"]
        Resource  = "arn:${format(local.arn_prefix, "autoscaling")}:autoScalingGroup:*:autoScalingGroupName/*"
        Condition = { StringEquals = { "autoscaling:ResourceTag/lifeguard:controller" = "enabled" } }
      },
      {
        Sid      = "Presence"
        Effect   = "Allow"
        Action   = ["dynamodb:Query"]
        Resource = aws_dynamodb_table.lease.arn
      },
    ]
  })
}

resource "aws_lambda_function" "controller" {
  function_name                  = "${var.group_name}-lifeguard-controller"
  description                    = "lifeguard controller (leader tag, orphaned lifecycle actions)"
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.controller_architecture]
  filename                       = var.controller_zip
  source_code_hash               = filebase64sha256(var.controller_zip)
  role                           = aws_iam_role.controller.arn
  timeout                        = 60
  memory_size                    = 128
  reserved_concurrent_executions = 1

  environment {
    variables = {
      LIFEGUARD_CONTROLLER_FLAGS = "--lease-table ${aws_dynamodb_table.lease.name}"
    }
  }
}

resource "aws_sns_topic_subscription" "controller" {
  topic_arn = aws_sns_topic.notifications.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.controller.arn
}

resource "aws_lambda_permission" "topic" {
  function_name = aws_lambda_function.controller.function_name
  action        = "lambda:InvokeFunction"
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.notifications.arn
}

resource "aws_cloudwatch_event_rule" "schedule" {
  description         = "The controller's periodic reconcile of every opted-in group."
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "schedule" {
  rule      = aws_cloudwatch_event_rule.schedule.name
  target_id = "controller"
  arn       = aws_lambda_function.controller.arn
}

resource "aws_lambda_permission" "schedule" {
  function_name = aws_lambda_function.controller.function_name
  action        = "lambda:InvokeFunction"
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule.arn
}

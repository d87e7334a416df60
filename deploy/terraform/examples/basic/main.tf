# A group of web servers kept by lifeguard: the launch template starts the
# agent with deploy/user-data/al2023.sh, whose queue and table are the
# module's outputs.

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "subnet_ids" {
  type = list(string)
}

variable "lifeguard_binary" {
  description = "Where the agent's binary comes from: s3://… or https://…"
  type        = string
}

variable "ami_id" {
  description = "An Amazon Linux 2023 AMI."
  type        = string
}

module "lifeguard" {
  source             = "../../modules/lifeguard"
  group_name         = "web"
  launch_template_id = aws_launch_template.web.id
  subnet_ids         = var.subnet_ids
  controller_zip     = "${path.module}/controller.zip"
}

resource "aws_launch_template" "web" {
  name_prefix   = "web-"
  image_id      = var.ami_id
  instance_type = "t4g.small"

  iam_instance_profile {
    arn = module.lifeguard.instance_profile_arn
  }
  metadata_options {
    http_tokens            = "required"
    instance_metadata_tags = "enabled"
  }
  # The script's settings come first; the script keeps values already set.
  user_data = base64encode(join("\n", [
    "#!/bin/bash",
    "export LIFEGUARD_BINARY=${var.lifeguard_binary}",
    "export LIFEGUARD_QUEUE_URL=${module.lifeguard.lifecycle_queue_url}",
    "export LIFEGUARD_LEASE_TABLE=${module.lifeguard.lease_table_name}",
    file("${path.module}/../../../user-data/al2023.sh"),
  ]))
}

output "lifecycle_queue_url" {
  value = module.lifeguard.lifecycle_queue_url
}

output "lease_table_name" {
  value = module.lifeguard.lease_table_name
}

variable "group_name" {
  description = "The Auto Scaling group's name."
  type        = string
}

variable "launch_template_id" {
  description = "The launch template of the group's instances (give it the instance profile output, and user data that starts the agent)."
  type        = string
}

variable "launch_template_version" {
  description = "The launch template's version."
  type        = string
  default     = "$Latest"
}

variable "subnet_ids" {
  description = "The subnets the group launches into."
  type        = list(string)
}

variable "min_size" {
  type    = number
  default = 1
}

variable "max_size" {
  type    = number
  default = 3
}

variable "lease_table_name" {
  description = "The DynamoDB table of the leader lease (leader.table)."
  type        = string
  default     = "lifeguard-leases"
}

variable "leader_tag_key" {
  description = "The tag the agents mirror leadership into (leader.tag.key)."
  type        = string
  default     = "leader"
}

variable "controller_zip" {
  description = "The controller's zip: lifeguard built for linux, named bootstrap."
  type        = string
}

variable "controller_architecture" {
  type    = string
  default = "arm64"
}

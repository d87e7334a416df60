"""The seed scenario through boto3, as a Python worker would write it.

Run by TestSeedScenarioWithBoto3 against the sandbox named by
LIFEGUARD_ENDPOINT. It prints one JSON object of what it saw; the Go test
judges it. Any unexpected failure raises, and the traceback fails the test.
"""

import json
import os
import sys
import time

import boto3
import botocore
from botocore.exceptions import ClientError

ENDPOINT = os.environ["LIFEGUARD_ENDPOINT"]
GROUP = "my-asg"
HOOK = "drain-hook"
ROLE = "arn:aws:iam::123456789012:role/asg-notify"

sqs = boto3.client("sqs", endpoint_url=ENDPOINT)
asg = boto3.client("autoscaling", endpoint_url=ENDPOINT)
out = {
    "boto3_version": boto3.__version__,
    "botocore_version": botocore.__version__,
    # Newer botocore picks from the model's "protocols" list
    # (resolved_protocol); older releases have only "protocol".
    "sqs_protocol": getattr(sqs.meta.service_model, "resolved_protocol", sqs.meta.service_model.protocol),
    "python": sys.version.split()[0],
}


def poll(what, check, attempts=120, pause=0.5):
    """Calls check until it returns a true value, a bounded number of times."""
    for _ in range(attempts):
        got = check()
        if got:
            return got
        time.sleep(pause)
    raise RuntimeError(f"{what}: not within {attempts * pause:.0f} s")


def receive_one(url):
    """Long-polls for one message, deletes it, returns its body as JSON."""
    for _ in range(10):
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=10)
        msgs = resp.get("Messages", [])
        if msgs:
            m = msgs[0]
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return json.loads(m["Body"])
    raise RuntimeError(f"no message on {url} within 100 s")


def group_instances():
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return groups[0]["Instances"] if groups else []


url = sqs.create_queue(QueueName="lifecycle-q")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
out["queue_arn"] = arn

asg.create_launch_configuration(
    LaunchConfigurationName="lc", ImageId="ami-0abcdef1234567890", InstanceType="t3.micro",
)
asg.create_auto_scaling_group(
    AutoScalingGroupName=GROUP, LaunchConfigurationName="lc",
    MinSize=0, MaxSize=2, DesiredCapacity=1, AvailabilityZones=["us-east-1a"],
)
instance = poll(
    "instance InService",
    lambda: next((i for i in group_instances() if i["LifecycleState"] == "InService"), None),
)
out["instance_id"] = instance["InstanceId"]

asg.put_lifecycle_hook(
    AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
    LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
    NotificationTargetARN=arn, RoleARN=ROLE,
    HeartbeatTimeout=1800, DefaultResult="CONTINUE",
)
out["test_notification"] = receive_one(url)

asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=0)
msg = receive_one(url)
out["lifecycle_message"] = msg
token = msg["LifecycleActionToken"]
out["state_while_waiting"] = next(
    (i["LifecycleState"] for i in group_instances() if i["InstanceId"] == instance["InstanceId"]), None,
)

asg.record_lifecycle_action_heartbeat(
    AutoScalingGroupName=GROUP, LifecycleHookName=HOOK, LifecycleActionToken=token,
)
asg.complete_lifecycle_action(
    AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
    LifecycleActionToken=token, LifecycleActionResult="CONTINUE",
)
poll(
    "instance gone from the group",
    lambda: all(i["InstanceId"] != instance["InstanceId"] for i in group_instances()),
)
out["instances_after"] = [i["InstanceId"] for i in group_instances()]

try:
    asg.complete_lifecycle_action(
        AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
        LifecycleActionToken=token, LifecycleActionResult="CONTINUE",
    )
    out["complete_again"] = {"error": None}
except ClientError as e:
    out["complete_again"] = {
        "code": e.response["Error"]["Code"],
        "message": e.response["Error"]["Message"],
        "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
    }

print(json.dumps(out))

package sandbox

// Deviations lists every way the sandbox knowingly differs from AWS.
// docs/sandbox.md lists them under "Deviations from AWS" (a test keeps the
// two in step), and `lifeguard sandbox --help` points there.
var Deviations = []string{
	"Instances are local processes: no AMI is booted; the user data runs on this host as the sandbox's user, in the instance's own directory and process group.",
	"cloud-config write_files with absolute paths are placed under the instance's root directory, named by $LIFEGUARD_SANDBOX_ROOT (an instance cannot write /etc here).",
	"An instance without user data runs no process at all (it still has its IMDS and API port).",
	"Each instance's private IP is a loopback address 127.0.0.N (Linux answers on all of 127/8; other systems need address aliases).",
	"IMDS is IMDSv2 only, whatever HttpTokens says, on a per-instance loopback port given to the instance as AWS_EC2_METADATA_SERVICE_ENDPOINT; an instance without an instance profile gets the role lifeguard-sandbox with dummy credentials.",
	"Instances reach the AWS APIs through their own loopback port (AWS_ENDPOINT_URL), so faults can target one instance.",
	"Requests are not authenticated: any credentials and any signature are accepted.",
	"Identifiers the sandbox does not model (AMIs, subnets, security groups, role and instance-profile ARNs) are accepted when well-formed; a subnet maps to zone a, b or c of the region by the FNV-1a hash of its id modulo 3.",
	"Several hooks on one transition: their actions start together; the instance moves on when all are completed; an ABANDON ends the others at once (AWS does not document the order).",
	"An abandoned launch terminates the instance without running terminate hooks.",
	"Launch back-off when launch hooks keep failing: after the n-th consecutive failure (n ≥ 2) the next launch waits 10 s × 2^(n−2), at most 5 minutes (AWS does not publish its rule).",
	"Transitions without hooks or load balancers take no time (on AWS they take seconds).",
	"Validation messages AWS does not publish (for example HeartbeatTimeout out of range) use AWS's generic form \"1 validation error detected: …\".",
	"Spot interruption (injected): the notice appears in IMDS and the group starts terminating the instance at once (its hooks run); at the notice time the instance is reclaimed whatever its hooks.",
	"--relax-limits lowers every time minimum to 1 s: HeartbeatTimeout (30 s), the launch back-off base (10 s), cooldowns, name-reuse waits and the waits before a Lambda asynchronous invocation's retries (1 and 2 minutes). Nothing else changes.",
	"Terminated instances stay visible to DescribeInstances for one hour of simulated time.",
	"A group's desired capacity is capped at 10,000 instances.",
	"DescribeInstances does not model network interfaces, block device mappings, public addresses or security groups; an instance in a zone-only group has no subnet or VPC.",
	"SQS: counts are exact; standard queues never duplicate and hand out visible messages in a seeded random order (best-effort order, as AWS promises); a stale receipt handle deletes nothing and succeeds; queue policies and KMS settings are stored, not enforced; the maximum message size is 1 MiB.",
	"SQS long polls wait in real time (visibility, delays and retention follow the sandbox clock).",
	"SNS: signatures are dummies that verify against nothing; HTTP(S) deliveries are retried 3 times, 20 s apart (1 s with --relax-limits); DeliveryPolicy, topic policies, KMS and data protection are stored, not applied; email, SMS and mobile protocols are refused.",
	"Lambda: functions are local processes running the zip's bootstrap (runtimes provided.al2023 and provided.al2 only, code as Code.ZipFile only); no versions, aliases, layers, function URLs, event source mappings, destinations or code signing; resource policies are stored, not enforced; memory size is reported, not enforced; the account's concurrency limit is not modelled (reserved concurrency is); a sandbox in memory or with --no-processes stores functions but answers Invoke with ResourceConflictException.",
	"Lambda timeouts and the waits between asynchronous retries run on the sandbox clock (advancing it times out a running invocation); the deadline a function sees is wall-clock time. An execution environment idle for 5 minutes is stopped.",
	"DynamoDB: no secondary indexes, streams, Scan, batch or transaction operations; TTL is stored, items are never reaped.",
	"EventBridge: schedule rules fire on the sandbox clock, rate() counted from when the rule was put and cron() in UTC (its L, W and # forms are accepted but never fire); InputPath takes dot notation only; targets other than SQS, SNS, Lambda and event buses are refused.",
	"Load balancers: application load balancers and classic ELBs with HTTP listeners that forward to one target group or to the instances (no HTTPS, rules, stickiness, slow start or network load balancers); each listener listens on a loopback port of its own, listed by GET /_sandbox/balancers, and the DNS name (<name>-<digits>.<region>.elb.localhost) is a label, not an address that resolves to that port.",
	"Load balancer health checks are paced by the sandbox clock (advancing it sends the due checks at once); a check's timeout is wall-clock time. A new target is healthy after HealthyThresholdCount passing checks, the first sent at registration.",
	"With no healthy target an application load balancer answers 503 (AWS fails open to every target when all are unhealthy); a draining target leaves as soon as it has no request in flight, or at the deregistration delay; in memory there is no data plane: listeners get no port and every health check fails.",
	"State lives in memory and is lost when the sandbox exits; the event log keeps the last 100,000 control events and the last 50,000 data events (messages and deliveries).",
}

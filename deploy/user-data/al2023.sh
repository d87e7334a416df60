#!/bin/bash
# lifeguard agent on Amazon Linux 2023: user data for the launch template of
# a group deployed with deploy/cloudformation or deploy/terraform. It installs
# the agent, writes its configuration and starts it under systemd. The
# instance profile is the kit's (`lifeguard iam-policy --config` of the
# configuration below). See deploy/user-data/README.md.
set -euo pipefail

# Set these (or export them in lines before this script): where the binary
# comes from, an S3 object (s3://…) or an HTTPS URL of the linux build for
# this architecture; and the kit's outputs, the queue and the table.
LIFEGUARD_BINARY="${LIFEGUARD_BINARY:-s3://my-bucket/lifeguard/lifeguard-linux-arm64}"
LIFEGUARD_QUEUE_URL="${LIFEGUARD_QUEUE_URL:-https://sqs.us-east-1.amazonaws.com/123456789012/web-lifecycle}"
LIFEGUARD_LEASE_TABLE="${LIFEGUARD_LEASE_TABLE:-lifeguard-leases}"

case "$LIFEGUARD_BINARY" in
s3://*) aws s3 cp --only-show-errors "$LIFEGUARD_BINARY" /usr/local/bin/lifeguard ;;
*) curl -fsSL --retry 5 -o /usr/local/bin/lifeguard "$LIFEGUARD_BINARY" ;;
esac
chmod 0755 /usr/local/bin/lifeguard

install -d -m 0755 /etc/lifeguard /var/app/leader
# The configuration names its queue and table as ${…} variables, set for the
# service by the drop-in below.
cat >/etc/lifeguard/agent.yaml <<'CONFIG'
source: sqs
sqs:
  queue_url: ${LIFEGUARD_QUEUE_URL}
launch:
  hook: lifeguard-launch
  probes:
    - name: app
      http: {url: "http://127.0.0.1:80/"}
terminate:
  hook: lifeguard-terminate
  steps:
    - name: stop-app
      command: ["systemctl", "stop", "app.service"]
      timeout: 2m
leader:
  mode: lease
  table: ${LIFEGUARD_LEASE_TABLE}
  marker_file: /var/app/leader/leader-manager-is-leader
  tag: {enabled: true, key: leader, value: "true", follower_value: "false"}
CONFIG

install -d -m 0755 /etc/systemd/system/lifeguard-agent.service.d
cat >/etc/systemd/system/lifeguard-agent.service.d/env.conf <<ENV
[Service]
Environment=LIFEGUARD_QUEUE_URL=$LIFEGUARD_QUEUE_URL
Environment=LIFEGUARD_LEASE_TABLE=$LIFEGUARD_LEASE_TABLE
ENV

# The unit of deploy/systemd/lifeguard-agent.service.
cat >/etc/systemd/system/lifeguard-agent.service <<'UNIT'
[Unit]
Description=lifeguard agent (EC2 Auto Scaling lifecycle hooks)
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart=/usr/local/bin/lifeguard agent --config /etc/lifeguard/agent.yaml
Restart=on-failure
RestartSec=2s
RestartPreventExitStatus=78
KillMode=process
TimeoutStopSec=15min
StateDirectory=lifeguard
StateDirectoryMode=0700
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
UNIT

LIFEGUARD_QUEUE_URL="$LIFEGUARD_QUEUE_URL" LIFEGUARD_LEASE_TABLE="$LIFEGUARD_LEASE_TABLE" \
	/usr/local/bin/lifeguard agent --config /etc/lifeguard/agent.yaml --check-config >/dev/null
systemctl daemon-reload
systemctl enable --now lifeguard-agent.service

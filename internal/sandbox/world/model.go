package world

import (
	"time"

	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// Lifecycle states (Auto Scaling's LifecycleState values the sandbox uses).
const (
	StatePending            = "Pending"
	StatePendingWait        = "Pending:Wait"
	StatePendingProceed     = "Pending:Proceed"
	StateInService          = "InService"
	StateTerminating        = "Terminating"
	StateTerminatingWait    = "Terminating:Wait"
	StateTerminatingProceed = "Terminating:Proceed"
	StateTerminated         = "Terminated"
	StateEnteringStandby    = "EnteringStandby"
	StateStandby            = "Standby"
	StateDetaching          = "Detaching"
	StateDetached           = "Detached"
)

// Lifecycle transitions.
const (
	TransitionLaunching   = "autoscaling:EC2_INSTANCE_LAUNCHING"
	TransitionTerminating = "autoscaling:EC2_INSTANCE_TERMINATING"
)

// Lifecycle action results.
const (
	ResultContinue = "CONTINUE"
	ResultAbandon  = "ABANDON"
)

// EC2 instance states.
const (
	EC2Pending      = "pending"
	EC2Running      = "running"
	EC2ShuttingDown = "shutting-down"
	EC2Terminated   = "terminated"
)

// EC2StateCode returns EC2's numeric code for a state name.
func EC2StateCode(s string) int {
	switch s {
	case EC2Pending:
		return 0
	case EC2Running:
		return 16
	case EC2ShuttingDown:
		return 32
	case EC2Terminated:
		return 48
	}
	return 0
}

// MetadataOptions are an instance's IMDS settings.
type MetadataOptions struct {
	HttpTokens              string // "required" | "optional"
	HttpEndpoint            string // "enabled" | "disabled"
	HttpPutResponseHopLimit int
	InstanceMetadataTags    string // "enabled" | "disabled"
}

// LaunchConfiguration is an Auto Scaling launch configuration.
type LaunchConfiguration struct {
	Name               string
	ARN                string
	ImageID            string
	InstanceType       string
	KeyName            string
	SecurityGroups     []string
	UserData           string // as sent (base64)
	IamInstanceProfile string
	Metadata           MetadataOptions
	Created            time.Time
}

// LaunchTemplate is an EC2 launch template with its versions.
type LaunchTemplate struct {
	ID             string
	Name           string
	Created        time.Time
	DefaultVersion int
	Versions       []*LaunchTemplateVersion // Versions[i].Number == i+1
	Tags           map[string]string
}

// LatestVersion returns the highest version number.
func (t *LaunchTemplate) LatestVersion() int { return len(t.Versions) }

// LaunchTemplateVersion is one version's launch data.
type LaunchTemplateVersion struct {
	Number             int
	Description        string
	ImageID            string
	InstanceType       string
	KeyName            string
	UserData           string // base64 as sent
	IamInstanceProfile string // ARN or name
	Metadata           MetadataOptions
	TagSpecs           []TagSpec
	Created            time.Time
}

// TagSpec is a launch template's tag specification for one resource type.
type TagSpec struct {
	ResourceType string
	Tags         []KV
}

// KV is a tag.
type KV struct{ Key, Value string }

// LaunchTemplateRef names a template and version as groups and instances
// carry them ("$Default", "$Latest" or a number).
type LaunchTemplateRef struct {
	ID, Name, Version string
}

// GroupTag is an Auto Scaling group tag.
type GroupTag struct {
	Key, Value        string
	PropagateAtLaunch bool
}

// Hook is a lifecycle hook.
type Hook struct {
	Name                  string
	Group                 string
	Transition            string
	HeartbeatTimeout      int // seconds
	DefaultResult         string
	NotificationMetadata  string
	NotificationTargetARN string
	RoleARN               string
}

// GlobalTimeout is min(100 × HeartbeatTimeout, 172800) seconds.
func (h Hook) GlobalTimeout() int { return min(100*h.HeartbeatTimeout, 172800) }

// Group is an Auto Scaling group.
type Group struct {
	Name, ARN              string
	LaunchConfiguration    string
	LaunchTemplate         *LaunchTemplateRef
	Min, Max, Desired      int
	DefaultCooldown        int
	AvailabilityZones      []string
	Subnets                []string // VPCZoneIdentifier, split
	HealthCheckType        string
	HealthCheckGracePeriod int
	TerminationPolicies    []string
	NewInstancesProtected  bool
	Tags                   []GroupTag
	Hooks                  []*Hook // in creation order
	NotificationConfigs    []NotificationConfig
	Created                time.Time
	Status                 string           // "" or "Delete in progress"
	Traffic                []*TrafficSource // attached load balancers and target groups
	Instances              []string         // ids, launch order; terminated ones leave
	LastScaling            time.Time

	// launch back-off after lifecycle-hook failures
	failures      int
	backoffUntil  time.Time
	reconcileMore bool // a reconcile is queued for the next batch of a large difference (batch)
	backoffTimer  simclock.Timer
}

// NotificationConfig is a group's SNS notification configuration.
type NotificationConfig struct {
	TopicARN string
	Type     string
}

// Instance is an EC2 instance, in an Auto Scaling group or not.
type Instance struct {
	ID             string
	Group          string // "" once detached
	ImageID        string
	InstanceType   string
	AZ             string
	Subnet         string
	PrivateIP      string
	LaunchConfig   string
	LaunchTemplate *LaunchTemplateRef // resolved version number
	UserData       []byte             // decoded
	Metadata       MetadataOptions
	RoleName       string
	KeyName        string
	LaunchTime     time.Time
	ReservationID  string

	State     string // Auto Scaling lifecycle state; "" outside a group
	Health    string // "Healthy" | "Unhealthy"
	Protected bool
	EC2State  string
	Target    string // IMDS autoscaling/target-lifecycle-state; "" = 404
	Tags      map[string]string
	Spot      *SpotNotice

	inServiceAt time.Time
	// the target groups and classic load balancers it is registered with
	tgs, lbs       []string
	draining       bool      // deregistered, waiting for draining before its terminate hooks
	unhealthyCause string    // the activity cause when its group replaces it
	actions        []*Action // pending lifecycle actions of the current transition
	activity       *Activity
	stopping       bool
	terminatedAt   time.Time
}

// SpotNotice is an injected spot interruption.
type SpotNotice struct {
	Action string    // "terminate"
	Time   time.Time // when EC2 reclaims the instance
}

// Action is a pending lifecycle action.
type Action struct {
	Token          string
	Instance       string
	Hook           Hook
	Started        time.Time
	Deadline       time.Time // heartbeat deadline, capped by GlobalDeadline
	GlobalDeadline time.Time
	timer          simclock.Timer
}

// Activity is a scaling activity.
type Activity struct {
	ID            string
	Group         string
	GroupARN      string
	Description   string
	Cause         string
	Start         time.Time
	End           time.Time
	StatusCode    string
	StatusMessage string
	Progress      int
	Details       string
	InstanceID    string
}

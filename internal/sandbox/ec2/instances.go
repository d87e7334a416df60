package ec2

import (
	"encoding/base32"
	"encoding/base64"
	"hash/fnv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// What every simulated instance reports for what the world does not model.
const (
	vpcID              = "vpc-0a1b2c3d"
	architecture       = "x86_64"
	rootDeviceType     = "ebs"
	rootDeviceName     = "/dev/xvda"
	hypervisor         = "xen"
	virtualizationType = "hvm"
)

// Wire shapes -----------------------------------------------------------------

type xmlReservation struct {
	ID        string                      `xml:"reservationId"`
	OwnerID   string                      `xml:"ownerId"`
	Groups    awsproto.Items[xmlGroup]    `xml:"groupSet"`
	Instances awsproto.Items[xmlInstance] `xml:"instancesSet"`
}

type xmlGroup struct {
	ID   string `xml:"groupId"`
	Name string `xml:"groupName"`
}

type xmlInstance struct {
	ID                 string                   `xml:"instanceId"`
	ImageID            string                   `xml:"imageId"`
	State              xmlState                 `xml:"instanceState"`
	PrivateDNSName     string                   `xml:"privateDnsName"`
	DNSName            string                   `xml:"dnsName"`
	Reason             string                   `xml:"reason"`
	KeyName            string                   `xml:"keyName,omitempty"`
	AMILaunchIndex     int                      `xml:"amiLaunchIndex"`
	InstanceType       string                   `xml:"instanceType"`
	LaunchTime         awsproto.Time            `xml:"launchTime"`
	Placement          xmlPlacement             `xml:"placement"`
	Monitoring         xmlMonitoring            `xml:"monitoring"`
	SubnetID           string                   `xml:"subnetId,omitempty"`
	VpcID              string                   `xml:"vpcId,omitempty"`
	PrivateIP          string                   `xml:"privateIpAddress,omitempty"`
	Groups             awsproto.Items[xmlGroup] `xml:"groupSet"`
	StateReason        *xmlStateReason          `xml:"stateReason,omitempty"`
	Architecture       string                   `xml:"architecture"`
	RootDeviceType     string                   `xml:"rootDeviceType"`
	RootDeviceName     string                   `xml:"rootDeviceName"`
	VirtualizationType string                   `xml:"virtualizationType"`
	Tags               awsproto.Items[xmlTag]   `xml:"tagSet,omitempty"`
	Hypervisor         string                   `xml:"hypervisor"`
	IamInstanceProfile *xmlIamProfile           `xml:"iamInstanceProfile,omitempty"`
	MetadataOptions    xmlInstanceMetadata      `xml:"metadataOptions"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xmlMonitoring struct {
	State string `xml:"state"`
}

type xmlStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlIamProfile struct {
	ARN string `xml:"arn"`
	ID  string `xml:"id"`
}

type xmlInstanceMetadata struct {
	State                   string `xml:"state"`
	HttpTokens              string `xml:"httpTokens"`
	HttpPutResponseHopLimit int    `xml:"httpPutResponseHopLimit"`
	HttpEndpoint            string `xml:"httpEndpoint"`
	HttpProtocolIpv6        string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags"`
}

type describeInstancesResult struct {
	Reservations awsproto.Items[xmlReservation] `xml:"reservationSet"`
	NextToken    string                         `xml:"nextToken,omitempty"`
}

type xmlStateChange struct {
	ID       string   `xml:"instanceId"`
	Current  xmlState `xml:"currentState"`
	Previous xmlState `xml:"previousState"`
}

type terminateResult struct {
	Instances awsproto.Items[xmlStateChange] `xml:"instancesSet"`
}

type consoleResult struct {
	InstanceID string        `xml:"instanceId"`
	Timestamp  awsproto.Time `xml:"timestamp"`
	Output     string        `xml:"output,omitempty"`
}

// Operations ------------------------------------------------------------------

func instanceKey(in world.Instance) string { return sortableTime(in.LaunchTime) + "\x00" + in.ID }

// instanceCursor reads a DescribeInstances NextToken: the instanceKey of
// the last instance of the previous page.
func instanceCursor(tok string) (world.InstanceCursor, error) {
	key, err := decodeToken(tok)
	if err != nil {
		return world.InstanceCursor{}, err
	}
	at, id, ok := strings.Cut(key, "\x00")
	t, terr := time.Parse(sortableTimeLayout, at)
	if !ok || terr != nil || id == "" {
		return world.InstanceCursor{}, invalidToken(tok)
	}
	return world.InstanceCursor{LaunchTime: t, ID: id}, nil
}

func (h *Handler) describeInstances(r request) (any, error) {
	ids := r.FlatStrings("InstanceId")
	fs, err := filters(r.Params)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if !world.ValidInstanceFilter(f.Name) {
			return nil, invalidFilter(f.Name)
		}
	}
	if r.Has("MaxResults") && len(ids) > 0 {
		return nil, awsproto.Errorf("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	limit, err := maxResults(r.Params, 5, 1000)
	if err != nil {
		return nil, err
	}
	var pg []world.Instance
	next := ""
	if len(ids) > 0 {
		ins, err := h.w.Instances(ids, fs)
		if err != nil {
			return nil, err
		}
		if pg, next, err = page(r.Params, ins, instanceKey, limit); err != nil {
			return nil, err
		}
	} else {
		// Paged in the world, which starts at the token: a page of 5 costs
		// the same with 20 or 20,000 instances shown.
		var after world.InstanceCursor
		if tok := r.String("NextToken"); tok != "" {
			if after, err = instanceCursor(tok); err != nil {
				return nil, err
			}
		}
		var more bool
		if pg, more, err = h.w.InstancesPage(fs, after, limit); err != nil {
			return nil, err
		}
		if more && len(pg) > 0 {
			next = encodeToken(instanceKey(pg[len(pg)-1]))
		}
	}
	// Every instance is its own reservation: each Auto Scaling launch is.
	out := describeInstancesResult{Reservations: awsproto.Items[xmlReservation]{}, NextToken: next}
	for _, in := range pg {
		out.Reservations = append(out.Reservations, xmlReservation{
			ID:        in.ReservationID,
			OwnerID:   h.account,
			Groups:    awsproto.Items[xmlGroup]{},
			Instances: awsproto.Items[xmlInstance]{h.instanceXML(in)},
		})
	}
	return out, nil
}

func (h *Handler) instanceXML(in world.Instance) xmlInstance {
	x := xmlInstance{
		ID:                 in.ID,
		ImageID:            in.ImageID,
		State:              state(in.EC2State),
		KeyName:            in.KeyName,
		InstanceType:       in.InstanceType,
		LaunchTime:         awsproto.Time(in.LaunchTime),
		Placement:          xmlPlacement{AvailabilityZone: in.AZ, Tenancy: "default"},
		Monitoring:         xmlMonitoring{State: "disabled"},
		Groups:             awsproto.Items[xmlGroup]{},
		StateReason:        stateReason(in),
		Architecture:       architecture,
		RootDeviceType:     rootDeviceType,
		RootDeviceName:     rootDeviceName,
		VirtualizationType: virtualizationType,
		Tags:               tagSet(in.Tags),
		Hypervisor:         hypervisor,
		MetadataOptions:    instanceMetadata(in.Metadata),
	}
	// A terminated instance has lost its network interface.
	if in.EC2State != world.EC2Terminated {
		x.PrivateIP = in.PrivateIP
		x.PrivateDNSName = privateDNSName(in.PrivateIP, h.region)
		x.SubnetID = in.Subnet
		if in.Subnet != "" {
			x.VpcID = vpcID
		}
	}
	if in.RoleName != "" {
		x.IamInstanceProfile = &xmlIamProfile{
			ARN: "arn:aws:iam::" + h.account + ":instance-profile/" + in.RoleName,
			ID:  profileID(in.RoleName),
		}
	}
	return x
}

// privateDNSName is EC2's internal host name for an address:
// ip-10-0-1-12.ec2.internal in us-east-1, ip-….<region>.compute.internal
// elsewhere.
func privateDNSName(ip, region string) string {
	if ip == "" {
		return ""
	}
	domain := region + ".compute.internal"
	if region == "us-east-1" {
		domain = "ec2.internal"
	}
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + domain
}

// profileID derives a stable instance profile id (AIPA…, 21 characters)
// from the profile's name.
func profileID(name string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	sum := h.Sum(nil)
	sum = append(sum, sum...)
	return "AIPA" + base32.StdEncoding.EncodeToString(sum)[:17]
}

// stateReason explains a pending or stopping instance's state as EC2 does.
func stateReason(in world.Instance) *xmlStateReason {
	switch in.EC2State {
	case world.EC2Pending:
		return &xmlStateReason{Code: "pending", Message: "pending"}
	case world.EC2ShuttingDown, world.EC2Terminated:
		switch {
		case in.Spot != nil:
			return &xmlStateReason{Code: "Server.SpotInstanceTermination", Message: "Server.SpotInstanceTermination: Spot instance termination"}
		}
		return &xmlStateReason{Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown"}
	}
	return nil
}

// instanceMetadata reports IMDS options with EC2's defaults filled in.
func instanceMetadata(m world.MetadataOptions) xmlInstanceMetadata {
	out := xmlInstanceMetadata{
		State:                   "applied",
		HttpTokens:              m.HttpTokens,
		HttpPutResponseHopLimit: m.HttpPutResponseHopLimit,
		HttpEndpoint:            m.HttpEndpoint,
		HttpProtocolIpv6:        "disabled",
		InstanceMetadataTags:    m.InstanceMetadataTags,
	}
	if out.HttpTokens == "" {
		out.HttpTokens = "optional"
	}
	if out.HttpPutResponseHopLimit == 0 {
		out.HttpPutResponseHopLimit = 1
	}
	if out.HttpEndpoint == "" {
		out.HttpEndpoint = "enabled"
	}
	if out.InstanceMetadataTags == "" {
		out.InstanceMetadataTags = "disabled"
	}
	return out
}

func (h *Handler) terminateInstances(r request) (any, error) {
	changes, err := h.w.TerminateInstances(r.FlatStrings("InstanceId"))
	if err != nil {
		return nil, err
	}
	out := terminateResult{Instances: awsproto.Items[xmlStateChange]{}}
	for _, c := range changes {
		out.Instances = append(out.Instances, xmlStateChange{ID: c.ID, Current: state(c.Current), Previous: state(c.Previous)})
	}
	return out, nil
}

func (h *Handler) getConsoleOutput(r request) (any, error) {
	id := r.String("InstanceId")
	if id == "" {
		return nil, missing("InstanceId")
	}
	if _, _, err := r.Bool("Latest"); err != nil {
		return nil, err
	}
	b, at, err := h.w.ConsoleOutput(id)
	if err != nil {
		return nil, err
	}
	// EC2 returns the console output base64-encoded.
	return consoleResult{InstanceID: id, Timestamp: awsproto.Time(at), Output: base64.StdEncoding.EncodeToString(b)}, nil
}

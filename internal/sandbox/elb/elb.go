// Package elb serves classic Elastic Load Balancing (awsquery, version
// 2012-06-01) over the sandbox's balancers owner: classic load balancers
// with HTTP listeners, their instances and health, the health check,
// connection draining and tags. It is a stateless translator from form
// parameters to *balancers.Balancers calls and from their results to the
// XML the AWS SDKs and CLIs expect. Operations it does not serve answer
// InvalidAction.
package elb

import (
	"net/http"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
)

// Version is the API version this handler serves.
const Version = "2012-06-01"

// Handler is the classic ELB endpoint; all state lives in the owner.
type Handler struct {
	b   *balancers.Balancers
	svc *awsproto.QueryService
}

type request = *awsproto.QueryRequest

// New returns a handler over b.
func New(b *balancers.Balancers) *Handler {
	h := &Handler{b: b}
	h.svc = &awsproto.QueryService{
		Version:   Version,
		Namespace: awsproto.NSELB,
		ParamCode: "ValidationError",
		Operations: map[string]awsproto.QueryOperation{
			"CreateLoadBalancer":                  h.createLoadBalancer,
			"DescribeLoadBalancers":               h.describeLoadBalancers,
			"DeleteLoadBalancer":                  h.deleteLoadBalancer,
			"RegisterInstancesWithLoadBalancer":   h.registerInstances,
			"DeregisterInstancesFromLoadBalancer": h.deregisterInstances,
			"DescribeInstanceHealth":              h.describeInstanceHealth,
			"ConfigureHealthCheck":                h.configureHealthCheck,
			"ModifyLoadBalancerAttributes":        h.modifyAttributes,
			"DescribeLoadBalancerAttributes":      h.describeAttributes,
			"AddTags":                             h.addTags,
			"DescribeTags":                        h.describeTags,
		},
	}
	return h
}

// ServeHTTP serves one awsquery request; the router has matched Version.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.svc.ServeHTTP(w, r) }

// WriteError writes e in classic ELB's error envelope (for injected faults).
func (h *Handler) WriteError(w http.ResponseWriter, requestID string, e *awsproto.Error) {
	h.svc.WriteError(w, requestID, e)
}

func name(r request) (string, error) {
	n := r.String("LoadBalancerName")
	if n == "" {
		return "", awsproto.Validation("LoadBalancerName is required: give it as the parameter LoadBalancerName")
	}
	return n, nil
}

type createXML struct {
	DNSName string `xml:"DNSName"`
}

func (h *Handler) createLoadBalancer(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	var ls []balancers.ClassicListener
	for i, m := range r.Members("Listeners") {
		lbPort, _, err := m.Int("LoadBalancerPort")
		if err != nil {
			return nil, err
		}
		inPort, _, err := m.Int("InstancePort")
		if err != nil {
			return nil, err
		}
		if m.String("Protocol") == "" {
			return nil, awsproto.Validation("Listeners.member.%d.Protocol is required (HTTP)", i+1)
		}
		ls = append(ls, balancers.ClassicListener{Protocol: m.String("Protocol"), InstanceProtocol: m.String("InstanceProtocol"), LoadBalancerPort: lbPort, InstancePort: inPort})
	}
	var tags []balancers.Tag
	for _, m := range r.Members("Tags") {
		tags = append(tags, balancers.Tag{Key: m.String("Key"), Value: m.String("Value")})
	}
	dns, err := h.b.CreateClassic(balancers.CreateClassicInput{
		Name: n, Scheme: r.String("Scheme"), Listeners: ls, Zones: r.Strings("AvailabilityZones"),
		Subnets: r.Strings("Subnets"), SecurityGroups: r.Strings("SecurityGroups"), Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	return createXML{dns}, nil
}

type listenerXML struct {
	Protocol         string   `xml:"Listener>Protocol"`
	LoadBalancerPort int      `xml:"Listener>LoadBalancerPort"`
	InstanceProtocol string   `xml:"Listener>InstanceProtocol"`
	InstancePort     int      `xml:"Listener>InstancePort"`
	PolicyNames      struct{} `xml:"PolicyNames"`
}

type healthCheckXML struct {
	Target             string `xml:"Target"`
	Interval           int    `xml:"Interval"`
	Timeout            int    `xml:"Timeout"`
	UnhealthyThreshold int    `xml:"UnhealthyThreshold"`
	HealthyThreshold   int    `xml:"HealthyThreshold"`
}

type instanceXML struct {
	InstanceID string `xml:"InstanceId"`
}

type descriptionXML struct {
	LoadBalancerName          string        `xml:"LoadBalancerName"`
	DNSName                   string        `xml:"DNSName"`
	CanonicalHostedZoneName   string        `xml:"CanonicalHostedZoneName"`
	CanonicalHostedZoneNameID string        `xml:"CanonicalHostedZoneNameID"`
	ListenerDescriptions      []listenerXML `xml:"ListenerDescriptions>member"`
	Policies                  struct {
		AppCookie struct{} `xml:"AppCookieStickinessPolicies"`
		LBCookie  struct{} `xml:"LBCookieStickinessPolicies"`
		Other     struct{} `xml:"OtherPolicies"`
	} `xml:"Policies"`
	BackendServerDescriptions struct{}       `xml:"BackendServerDescriptions"`
	AvailabilityZones         []string       `xml:"AvailabilityZones>member"`
	Subnets                   []string       `xml:"Subnets>member"`
	VPCID                     string         `xml:"VPCId,omitempty"`
	Instances                 []instanceXML  `xml:"Instances>member"`
	HealthCheck               healthCheckXML `xml:"HealthCheck"`
	SourceSecurityGroup       struct {
		OwnerAlias string `xml:"OwnerAlias"`
		GroupName  string `xml:"GroupName"`
	} `xml:"SourceSecurityGroup"`
	SecurityGroups []string `xml:"SecurityGroups>member"`
	CreatedTime    string   `xml:"CreatedTime"`
	Scheme         string   `xml:"Scheme"`
}

type describeXML struct {
	LoadBalancerDescriptions []descriptionXML `xml:"LoadBalancerDescriptions>member"`
}

func instances(ids []string) []instanceXML {
	out := []instanceXML{}
	for _, id := range ids {
		out = append(out, instanceXML{id})
	}
	return out
}

func toHealthCheck(hc balancers.ClassicHealthCheck) healthCheckXML {
	return healthCheckXML{hc.Target, hc.Interval, hc.Timeout, hc.UnhealthyThreshold, hc.HealthyThreshold}
}

func (h *Handler) describeLoadBalancers(r request) (any, error) {
	cs, err := h.b.Classics(r.Strings("LoadBalancerNames"))
	if err != nil {
		return nil, err
	}
	out := describeXML{LoadBalancerDescriptions: []descriptionXML{}}
	for _, c := range cs {
		d := descriptionXML{
			LoadBalancerName: c.Name, DNSName: c.DNSName, CanonicalHostedZoneName: c.DNSName, CanonicalHostedZoneNameID: c.HostedZoneID,
			AvailabilityZones: c.Zones, Subnets: c.Subnets, VPCID: c.VPCID, Instances: instances(c.Instances),
			HealthCheck: toHealthCheck(c.HealthCheck), SecurityGroups: c.SecurityGroups,
			CreatedTime: c.Created.Format(time.RFC3339Nano), Scheme: c.Scheme,
		}
		d.SourceSecurityGroup.OwnerAlias, d.SourceSecurityGroup.GroupName = "amazon-elb", "amazon-elb-sg"
		for _, l := range c.Listeners {
			d.ListenerDescriptions = append(d.ListenerDescriptions, listenerXML{Protocol: l.Protocol, LoadBalancerPort: l.LoadBalancerPort, InstanceProtocol: l.InstanceProtocol, InstancePort: l.InstancePort})
		}
		out.LoadBalancerDescriptions = append(out.LoadBalancerDescriptions, d)
	}
	return out, nil
}

func (h *Handler) deleteLoadBalancer(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	h.b.DeleteClassic(n)
	return nil, nil
}

type instancesXML struct {
	Instances []instanceXML `xml:"Instances>member"`
}

func instanceIDs(r request) ([]string, error) {
	var ids []string
	for i, m := range r.Members("Instances") {
		id := m.String("InstanceId")
		if id == "" {
			return nil, awsproto.Validation("Instances.member.%d.InstanceId is required", i+1)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (h *Handler) registerInstances(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	ids, err := instanceIDs(r)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, awsproto.Validation("Instances: give at least one instance (Instances.member.1.InstanceId)")
	}
	now, err := h.b.RegisterInstances(n, ids)
	if err != nil {
		return nil, err
	}
	return instancesXML{instances(now)}, nil
}

func (h *Handler) deregisterInstances(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	ids, err := instanceIDs(r)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, awsproto.Validation("Instances: give at least one instance (Instances.member.1.InstanceId)")
	}
	now, err := h.b.DeregisterInstances(n, ids)
	if err != nil {
		return nil, err
	}
	return instancesXML{instances(now)}, nil
}

type stateXML struct {
	InstanceID  string `xml:"InstanceId"`
	State       string `xml:"State"`
	ReasonCode  string `xml:"ReasonCode"`
	Description string `xml:"Description"`
}

type statesXML struct {
	InstanceStates []stateXML `xml:"InstanceStates>member"`
}

func (h *Handler) describeInstanceHealth(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	ids, err := instanceIDs(r)
	if err != nil {
		return nil, err
	}
	sts, err := h.b.InstanceHealth(n, ids)
	if err != nil {
		return nil, err
	}
	out := statesXML{InstanceStates: []stateXML{}}
	for _, s := range sts {
		out.InstanceStates = append(out.InstanceStates, stateXML(s))
	}
	return out, nil
}

type configureXML struct {
	HealthCheck healthCheckXML `xml:"HealthCheck"`
}

func (h *Handler) configureHealthCheck(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	p := r.Sub("HealthCheck")
	hc := balancers.ClassicHealthCheck{Target: p.String("Target")}
	for field, dst := range map[string]*int{"Interval": &hc.Interval, "Timeout": &hc.Timeout, "HealthyThreshold": &hc.HealthyThreshold, "UnhealthyThreshold": &hc.UnhealthyThreshold} {
		v, ok, err := p.Int(field)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, awsproto.Validation("HealthCheck.%s is required", field)
		}
		*dst = v
	}
	if hc.Target == "" {
		return nil, awsproto.Validation("HealthCheck.Target is required (for example HTTP:80/health)")
	}
	got, err := h.b.ConfigureHealthCheck(n, hc)
	if err != nil {
		return nil, err
	}
	return configureXML{toHealthCheck(got)}, nil
}

type attributesXML struct {
	CrossZone struct {
		Enabled bool `xml:"Enabled"`
	} `xml:"CrossZoneLoadBalancing"`
	AccessLog struct {
		Enabled bool `xml:"Enabled"`
	} `xml:"AccessLog"`
	ConnectionDraining struct {
		Enabled bool `xml:"Enabled"`
		Timeout int  `xml:"Timeout"`
	} `xml:"ConnectionDraining"`
	ConnectionSettings struct {
		IdleTimeout int `xml:"IdleTimeout"`
	} `xml:"ConnectionSettings"`
	AdditionalAttributes []tagXML `xml:"AdditionalAttributes>member"`
}

func toAttributes(a balancers.ClassicAttributes) attributesXML {
	var x attributesXML
	x.CrossZone.Enabled = a.CrossZone
	x.AccessLog.Enabled = a.AccessLogEnabled
	x.ConnectionDraining.Enabled, x.ConnectionDraining.Timeout = a.DrainingEnabled, a.DrainingTimeout
	x.ConnectionSettings.IdleTimeout = a.IdleTimeout
	x.AdditionalAttributes = []tagXML{{"elb.http.desyncmitigationmode", "defensive"}}
	return x
}

type describeAttributesXML struct {
	Attributes attributesXML `xml:"LoadBalancerAttributes"`
}

type modifyAttributesXML struct {
	LoadBalancerName string        `xml:"LoadBalancerName"`
	Attributes       attributesXML `xml:"LoadBalancerAttributes"`
}

func (h *Handler) describeAttributes(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	a, err := h.b.ClassicAttributesOf(n)
	if err != nil {
		return nil, err
	}
	return describeAttributesXML{toAttributes(a)}, nil
}

func (h *Handler) modifyAttributes(r request) (any, error) {
	n, err := name(r)
	if err != nil {
		return nil, err
	}
	p := r.Sub("LoadBalancerAttributes")
	if !r.Sent("LoadBalancerAttributes") {
		return nil, awsproto.Validation("LoadBalancerAttributes is required: give for example LoadBalancerAttributes.ConnectionDraining.Enabled=true")
	}
	a, err := h.b.ModifyClassicAttributes(n, func(a *balancers.ClassicAttributes) error {
		for field, dst := range map[string]*bool{
			"ConnectionDraining.Enabled": &a.DrainingEnabled, "CrossZoneLoadBalancing.Enabled": &a.CrossZone, "AccessLog.Enabled": &a.AccessLogEnabled,
		} {
			v, ok, err := p.Bool(field)
			if err != nil {
				return err
			}
			if ok {
				*dst = v
			}
		}
		for field, dst := range map[string]*int{"ConnectionDraining.Timeout": &a.DrainingTimeout, "ConnectionSettings.IdleTimeout": &a.IdleTimeout} {
			v, ok, err := p.Int(field)
			if err != nil {
				return err
			}
			if ok {
				*dst = v
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return modifyAttributesXML{n, toAttributes(a)}, nil
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func (h *Handler) addTags(r request) (any, error) {
	names := r.Strings("LoadBalancerNames")
	if len(names) == 0 {
		return nil, awsproto.Validation("LoadBalancerNames: give one load balancer (LoadBalancerNames.member.1)")
	}
	var tags []balancers.Tag
	for i, m := range r.Members("Tags") {
		if m.String("Key") == "" {
			return nil, awsproto.Validation("Tags.member.%d.Key is required", i+1)
		}
		tags = append(tags, balancers.Tag{Key: m.String("Key"), Value: m.String("Value")})
	}
	if len(tags) == 0 {
		return nil, awsproto.Validation("Tags: give at least one tag (Tags.member.1.Key)")
	}
	return nil, h.b.AddTags(names, tags)
}

type tagDescriptionXML struct {
	LoadBalancerName string   `xml:"LoadBalancerName"`
	Tags             []tagXML `xml:"Tags>member"`
}

type tagsXML struct {
	TagDescriptions []tagDescriptionXML `xml:"TagDescriptions>member"`
}

func (h *Handler) describeTags(r request) (any, error) {
	names := r.Strings("LoadBalancerNames")
	if len(names) == 0 {
		return nil, awsproto.Validation("LoadBalancerNames: give at least one load balancer (LoadBalancerNames.member.1)")
	}
	got, err := h.b.Tags(names)
	if err != nil {
		return nil, err
	}
	out := tagsXML{TagDescriptions: []tagDescriptionXML{}}
	for _, n := range names {
		d := tagDescriptionXML{LoadBalancerName: n, Tags: []tagXML{}}
		for _, t := range got[n] {
			d.Tags = append(d.Tags, tagXML(t))
		}
		out.TagDescriptions = append(out.TagDescriptions, d)
	}
	return out, nil
}

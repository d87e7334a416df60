// Package elbv2 serves Elastic Load Balancing v2 (awsquery, version
// 2015-12-01) over the sandbox's balancers owner: application load
// balancers, target groups and their attributes, HTTP listeners that
// forward, target registration and DescribeTargetHealth. It is a
// stateless translator from form parameters to *balancers.Balancers calls
// and from their results to the XML the AWS SDKs and CLIs expect.
// Operations it does not serve answer InvalidAction.
package elbv2

import (
	"net/http"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
)

// Version is the API version this handler serves.
const Version = "2015-12-01"

// Handler is the ELBv2 endpoint; all state lives in the owner.
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
		Namespace: awsproto.NSELBv2,
		ParamCode: "ValidationError",
		Operations: map[string]awsproto.QueryOperation{
			"CreateLoadBalancer":            h.createLoadBalancer,
			"DescribeLoadBalancers":         h.describeLoadBalancers,
			"DeleteLoadBalancer":            h.deleteLoadBalancer,
			"CreateTargetGroup":             h.createTargetGroup,
			"DescribeTargetGroups":          h.describeTargetGroups,
			"DeleteTargetGroup":             h.deleteTargetGroup,
			"ModifyTargetGroup":             h.modifyTargetGroup,
			"ModifyTargetGroupAttributes":   h.modifyTargetGroupAttributes,
			"DescribeTargetGroupAttributes": h.describeTargetGroupAttributes,
			"CreateListener":                h.createListener,
			"DescribeListeners":             h.describeListeners,
			"DeleteListener":                h.deleteListener,
			"RegisterTargets":               h.registerTargets,
			"DeregisterTargets":             h.deregisterTargets,
			"DescribeTargetHealth":          h.describeTargetHealth,
		},
	}
	return h
}

// ServeHTTP serves one awsquery request; the router has matched Version.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.svc.ServeHTTP(w, r) }

// WriteError writes e in ELBv2's error envelope (for injected faults).
func (h *Handler) WriteError(w http.ResponseWriter, requestID string, e *awsproto.Error) {
	h.svc.WriteError(w, requestID, e)
}

func required(r request, name string) (string, error) {
	v := r.String(name)
	if v == "" {
		return "", awsproto.Validation("%s is required: give it as the parameter %s", name, name)
	}
	return v, nil
}

// Wire shapes.

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type zoneXML struct {
	ZoneName string `xml:"ZoneName"`
	SubnetID string `xml:"SubnetId"`
}

type lbXML struct {
	LoadBalancerArn       string    `xml:"LoadBalancerArn"`
	DNSName               string    `xml:"DNSName"`
	CanonicalHostedZoneID string    `xml:"CanonicalHostedZoneId"`
	CreatedTime           string    `xml:"CreatedTime"`
	LoadBalancerName      string    `xml:"LoadBalancerName"`
	Scheme                string    `xml:"Scheme"`
	VpcID                 string    `xml:"VpcId"`
	State                 string    `xml:"State>Code"`
	Type                  string    `xml:"Type"`
	AvailabilityZones     []zoneXML `xml:"AvailabilityZones>member"`
	SecurityGroups        []string  `xml:"SecurityGroups>member"`
	IPAddressType         string    `xml:"IpAddressType"`
}

func toLB(lb balancers.LoadBalancer) lbXML {
	x := lbXML{
		LoadBalancerArn: lb.ARN, DNSName: lb.DNSName, CanonicalHostedZoneID: lb.HostedZoneID,
		CreatedTime: lb.Created.Format(time.RFC3339Nano), LoadBalancerName: lb.Name, Scheme: lb.Scheme,
		VpcID: lb.VPCID, State: lb.State, Type: lb.Type, SecurityGroups: lb.SecurityGroups, IPAddressType: lb.IPAddressType,
	}
	for _, z := range lb.Zones {
		x.AvailabilityZones = append(x.AvailabilityZones, zoneXML{z.Name, z.Subnet})
	}
	return x
}

type lbsXML struct {
	LoadBalancers []lbXML `xml:"LoadBalancers>member"`
}

func tags(r request) []balancers.Tag {
	var out []balancers.Tag
	for _, m := range r.Members("Tags") {
		out = append(out, balancers.Tag{Key: m.String("Key"), Value: m.String("Value")})
	}
	return out
}

func (h *Handler) createLoadBalancer(r request) (any, error) {
	name, err := required(r, "Name")
	if err != nil {
		return nil, err
	}
	subnets := r.Strings("Subnets")
	for _, m := range r.Members("SubnetMappings") {
		subnets = append(subnets, m.String("SubnetId"))
	}
	lb, err := h.b.CreateLoadBalancer(balancers.CreateLoadBalancerInput{
		Name: name, Type: r.String("Type"), Scheme: r.String("Scheme"), IPAddressType: r.String("IpAddressType"),
		Subnets: subnets, SecurityGroups: r.Strings("SecurityGroups"), Tags: tags(r),
	})
	if err != nil {
		return nil, err
	}
	return lbsXML{[]lbXML{toLB(lb)}}, nil
}

func (h *Handler) describeLoadBalancers(r request) (any, error) {
	lbs, err := h.b.LoadBalancers(r.Strings("LoadBalancerArns"), r.Strings("Names"))
	if err != nil {
		return nil, err
	}
	out := lbsXML{LoadBalancers: []lbXML{}}
	for _, lb := range lbs {
		out.LoadBalancers = append(out.LoadBalancers, toLB(lb))
	}
	return out, nil
}

func (h *Handler) deleteLoadBalancer(r request) (any, error) {
	arn, err := required(r, "LoadBalancerArn")
	if err != nil {
		return nil, err
	}
	return nil, h.b.DeleteLoadBalancer(arn)
}

type tgXML struct {
	TargetGroupArn             string   `xml:"TargetGroupArn"`
	TargetGroupName            string   `xml:"TargetGroupName"`
	Protocol                   string   `xml:"Protocol"`
	Port                       int      `xml:"Port"`
	VpcID                      string   `xml:"VpcId"`
	HealthCheckProtocol        string   `xml:"HealthCheckProtocol"`
	HealthCheckPort            string   `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool     `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int      `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int      `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int      `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int      `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            string   `xml:"HealthCheckPath"`
	Matcher                    string   `xml:"Matcher>HttpCode"`
	LoadBalancerArns           []string `xml:"LoadBalancerArns>member"`
	TargetType                 string   `xml:"TargetType"`
	ProtocolVersion            string   `xml:"ProtocolVersion"`
	IPAddressType              string   `xml:"IpAddressType"`
}

func toTG(tg balancers.TargetGroup) tgXML {
	hc := tg.HealthCheck
	return tgXML{
		TargetGroupArn: tg.ARN, TargetGroupName: tg.Name, Protocol: tg.Protocol, Port: tg.Port, VpcID: tg.VPCID,
		HealthCheckProtocol: hc.Protocol, HealthCheckPort: hc.Port, HealthCheckEnabled: hc.Enabled,
		HealthCheckIntervalSeconds: hc.Interval, HealthCheckTimeoutSeconds: hc.Timeout,
		HealthyThresholdCount: hc.HealthyThreshold, UnhealthyThresholdCount: hc.UnhealthyThreshold,
		HealthCheckPath: hc.Path, Matcher: hc.Matcher, LoadBalancerArns: tg.LoadBalancerARNs,
		TargetType: tg.TargetType, ProtocolVersion: tg.ProtocolVersion, IPAddressType: tg.IPAddressType,
	}
}

type tgsXML struct {
	TargetGroups []tgXML `xml:"TargetGroups>member"`
}

// healthCheck reads the health check parameters of CreateTargetGroup and
// ModifyTargetGroup, and which were sent.
func healthCheck(r request) (balancers.HealthCheck, map[string]bool, error) {
	var hc balancers.HealthCheck
	set := map[string]bool{}
	for name, dst := range map[string]*string{"HealthCheckProtocol": &hc.Protocol, "HealthCheckPort": &hc.Port, "HealthCheckPath": &hc.Path} {
		if v, ok := r.Optional(name); ok {
			*dst, set[name] = v, true
		}
	}
	if v, ok := r.Optional("Matcher.HttpCode"); ok {
		hc.Matcher, set["Matcher"] = v, true
	}
	if v, ok, err := r.Bool("HealthCheckEnabled"); err != nil {
		return hc, nil, err
	} else if ok {
		hc.Enabled, set["HealthCheckEnabled"] = v, true
	}
	for name, dst := range map[string]*int{
		"HealthCheckIntervalSeconds": &hc.Interval, "HealthCheckTimeoutSeconds": &hc.Timeout,
		"HealthyThresholdCount": &hc.HealthyThreshold, "UnhealthyThresholdCount": &hc.UnhealthyThreshold,
	} {
		v, ok, err := r.Int(name)
		if err != nil {
			return hc, nil, err
		}
		if ok {
			*dst, set[name] = v, true
		}
	}
	return hc, set, nil
}

func (h *Handler) createTargetGroup(r request) (any, error) {
	name, err := required(r, "Name")
	if err != nil {
		return nil, err
	}
	port, _, err := r.Int("Port")
	if err != nil {
		return nil, err
	}
	hc, set, err := healthCheck(r)
	if err != nil {
		return nil, err
	}
	tg, err := h.b.CreateTargetGroup(balancers.CreateTargetGroupInput{
		Name: name, Protocol: r.String("Protocol"), VPCID: r.String("VpcId"), TargetType: r.String("TargetType"),
		Port: port, HealthCheck: hc, Set: set, Tags: tags(r),
	})
	if err != nil {
		return nil, err
	}
	return tgsXML{[]tgXML{toTG(tg)}}, nil
}

func (h *Handler) describeTargetGroups(r request) (any, error) {
	tgs, err := h.b.TargetGroups(r.Strings("TargetGroupArns"), r.Strings("Names"), r.String("LoadBalancerArn"))
	if err != nil {
		return nil, err
	}
	out := tgsXML{TargetGroups: []tgXML{}}
	for _, tg := range tgs {
		out.TargetGroups = append(out.TargetGroups, toTG(tg))
	}
	return out, nil
}

func (h *Handler) deleteTargetGroup(r request) (any, error) {
	arn, err := required(r, "TargetGroupArn")
	if err != nil {
		return nil, err
	}
	return nil, h.b.DeleteTargetGroup(arn)
}

func (h *Handler) modifyTargetGroup(r request) (any, error) {
	arn, err := required(r, "TargetGroupArn")
	if err != nil {
		return nil, err
	}
	hc, set, err := healthCheck(r)
	if err != nil {
		return nil, err
	}
	tg, err := h.b.ModifyTargetGroup(arn, hc, set)
	if err != nil {
		return nil, err
	}
	return tgsXML{[]tgXML{toTG(tg)}}, nil
}

type attrsXML struct {
	Attributes []tagXML `xml:"Attributes>member"`
}

func toAttrs(as []balancers.Tag) attrsXML {
	out := attrsXML{Attributes: []tagXML{}}
	for _, a := range as {
		out.Attributes = append(out.Attributes, tagXML{a.Key, a.Value})
	}
	return out
}

func (h *Handler) describeTargetGroupAttributes(r request) (any, error) {
	arn, err := required(r, "TargetGroupArn")
	if err != nil {
		return nil, err
	}
	as, err := h.b.TargetGroupAttributes(arn)
	if err != nil {
		return nil, err
	}
	return toAttrs(as), nil
}

func (h *Handler) modifyTargetGroupAttributes(r request) (any, error) {
	arn, err := required(r, "TargetGroupArn")
	if err != nil {
		return nil, err
	}
	var in []balancers.Tag
	for _, m := range r.Members("Attributes") {
		in = append(in, balancers.Tag{Key: m.String("Key"), Value: m.String("Value")})
	}
	if len(in) == 0 {
		return nil, awsproto.Validation("Attributes: give at least one attribute (Attributes.member.1.Key and .Value)")
	}
	as, err := h.b.ModifyTargetGroupAttributes(arn, in)
	if err != nil {
		return nil, err
	}
	return toAttrs(as), nil
}

type actionXML struct {
	Type           string `xml:"Type"`
	TargetGroupArn string `xml:"TargetGroupArn"`
}

type listenerXML struct {
	ListenerArn     string      `xml:"ListenerArn"`
	LoadBalancerArn string      `xml:"LoadBalancerArn"`
	Port            int         `xml:"Port"`
	Protocol        string      `xml:"Protocol"`
	DefaultActions  []actionXML `xml:"DefaultActions>member"`
}

type listenersXML struct {
	Listeners []listenerXML `xml:"Listeners>member"`
}

func toListener(l balancers.Listener) listenerXML {
	return listenerXML{l.ARN, l.LoadBalancerARN, l.Port, l.Protocol, []actionXML{{"forward", l.TargetGroupARN}}}
}

func (h *Handler) createListener(r request) (any, error) {
	lbARN, err := required(r, "LoadBalancerArn")
	if err != nil {
		return nil, err
	}
	port, ok, err := r.Int("Port")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, awsproto.Validation("Port is required: give the listener's port as the parameter Port")
	}
	actions := r.Members("DefaultActions")
	if len(actions) != 1 {
		return nil, awsproto.Validation("DefaultActions: give exactly one action, DefaultActions.member.1.Type=forward with its TargetGroupArn")
	}
	a := actions[0]
	tgARN := a.String("TargetGroupArn")
	if tgARN == "" {
		if tgs := a.Members("ForwardConfig.TargetGroups"); len(tgs) == 1 {
			tgARN = tgs[0].String("TargetGroupArn")
		}
	}
	if tgARN == "" && a.String("Type") == "forward" {
		return nil, awsproto.Validation("DefaultActions.member.1.TargetGroupArn is required for a forward action")
	}
	protocol := r.String("Protocol")
	if protocol == "" {
		protocol = "HTTP"
	}
	l, err := h.b.CreateListener(lbARN, protocol, port, a.String("Type"), tgARN)
	if err != nil {
		return nil, err
	}
	return listenersXML{[]listenerXML{toListener(l)}}, nil
}

func (h *Handler) describeListeners(r request) (any, error) {
	ls, err := h.b.Listeners(r.String("LoadBalancerArn"), r.Strings("ListenerArns"))
	if err != nil {
		return nil, err
	}
	out := listenersXML{Listeners: []listenerXML{}}
	for _, l := range ls {
		out.Listeners = append(out.Listeners, toListener(l))
	}
	return out, nil
}

func (h *Handler) deleteListener(r request) (any, error) {
	arn, err := required(r, "ListenerArn")
	if err != nil {
		return nil, err
	}
	return nil, h.b.DeleteListener(arn)
}

func targets(r request) ([]balancers.Target, error) {
	var out []balancers.Target
	for i, m := range r.Members("Targets") {
		id := m.String("Id")
		if id == "" {
			return nil, awsproto.Validation("Targets.member.%d.Id is required", i+1)
		}
		port, _, err := m.Int("Port")
		if err != nil {
			return nil, err
		}
		out = append(out, balancers.Target{ID: id, Port: port})
	}
	return out, nil
}

func (h *Handler) registerTargets(r request) (any, error) {
	arn, err := required(r, "TargetGroupArn")
	if err != nil {
		return nil, err
	}
	ts, err := targets(r)
	if err != nil {
		return nil, err
	}
	return nil, h.b.RegisterTargets(arn, ts)
}

func (h *Handler) deregisterTargets(r request) (any, error) {
	arn, err := required(r, "TargetGroupArn")
	if err != nil {
		return nil, err
	}
	ts, err := targets(r)
	if err != nil {
		return nil, err
	}
	return nil, h.b.DeregisterTargets(arn, ts)
}

type targetXML struct {
	ID   string `xml:"Id"`
	Port int    `xml:"Port"`
}

type healthXML struct {
	State       string `xml:"State"`
	Reason      string `xml:"Reason,omitempty"`
	Description string `xml:"Description,omitempty"`
}

type thdXML struct {
	Target          targetXML `xml:"Target"`
	HealthCheckPort string    `xml:"HealthCheckPort"`
	TargetHealth    healthXML `xml:"TargetHealth"`
}

type targetHealthXML struct {
	TargetHealthDescriptions []thdXML `xml:"TargetHealthDescriptions>member"`
}

func (h *Handler) describeTargetHealth(r request) (any, error) {
	arn, err := required(r, "TargetGroupArn")
	if err != nil {
		return nil, err
	}
	ts, err := targets(r)
	if err != nil {
		return nil, err
	}
	ths, err := h.b.TargetHealth(arn, ts)
	if err != nil {
		return nil, err
	}
	out := targetHealthXML{TargetHealthDescriptions: []thdXML{}}
	for _, t := range ths {
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, thdXML{
			Target: targetXML{t.ID, t.Port}, HealthCheckPort: t.HealthCheckPort,
			TargetHealth: healthXML{t.State, t.Reason, t.Description},
		})
	}
	return out, nil
}

package ec2

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// Wire shapes -----------------------------------------------------------------

type xmlTemplate struct {
	ID             string                 `xml:"launchTemplateId"`
	Name           string                 `xml:"launchTemplateName"`
	CreateTime     awsproto.Time          `xml:"createTime"`
	CreatedBy      string                 `xml:"createdBy"`
	DefaultVersion int                    `xml:"defaultVersionNumber"`
	LatestVersion  int                    `xml:"latestVersionNumber"`
	Tags           awsproto.Items[xmlTag] `xml:"tagSet,omitempty"`
}

type xmlTemplateVersion struct {
	TemplateID   string          `xml:"launchTemplateId"`
	TemplateName string          `xml:"launchTemplateName"`
	Number       int             `xml:"versionNumber"`
	Description  string          `xml:"versionDescription,omitempty"`
	CreateTime   awsproto.Time   `xml:"createTime"`
	CreatedBy    string          `xml:"createdBy"`
	Default      bool            `xml:"defaultVersion"`
	Data         xmlTemplateData `xml:"launchTemplateData"`
}

type xmlTemplateData struct {
	ImageID            string                     `xml:"imageId,omitempty"`
	InstanceType       string                     `xml:"instanceType,omitempty"`
	KeyName            string                     `xml:"keyName,omitempty"`
	UserData           string                     `xml:"userData,omitempty"`
	IamInstanceProfile *xmlProfileSpec            `xml:"iamInstanceProfile,omitempty"`
	MetadataOptions    *xmlTemplateMetadata       `xml:"metadataOptions,omitempty"`
	TagSpecs           awsproto.Items[xmlTagSpec] `xml:"tagSpecificationSet,omitempty"`
}

type xmlProfileSpec struct {
	ARN  string `xml:"arn,omitempty"`
	Name string `xml:"name,omitempty"`
}

type xmlTemplateMetadata struct {
	HttpTokens              string `xml:"httpTokens,omitempty"`
	HttpPutResponseHopLimit int    `xml:"httpPutResponseHopLimit,omitempty"`
	HttpEndpoint            string `xml:"httpEndpoint,omitempty"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags,omitempty"`
}

type xmlTagSpec struct {
	ResourceType string                 `xml:"resourceType"`
	Tags         awsproto.Items[xmlTag] `xml:"tagSet"`
}

type templateResult struct {
	Template xmlTemplate `xml:"launchTemplate"`
}

type templateVersionResult struct {
	Version xmlTemplateVersion `xml:"launchTemplateVersion"`
}

type describeTemplatesResult struct {
	Templates awsproto.Items[xmlTemplate] `xml:"launchTemplates"`
	NextToken string                      `xml:"nextToken,omitempty"`
}

type describeVersionsResult struct {
	Versions  awsproto.Items[xmlTemplateVersion] `xml:"launchTemplateVersionSet"`
	NextToken string                             `xml:"nextToken,omitempty"`
}

func (h *Handler) createdBy() string { return "arn:aws:iam::" + h.account + ":root" }

func (h *Handler) templateXML(t world.LaunchTemplate, tags map[string]string) xmlTemplate {
	return xmlTemplate{
		ID:             t.ID,
		Name:           t.Name,
		CreateTime:     awsproto.Time(t.Created),
		CreatedBy:      h.createdBy(),
		DefaultVersion: t.DefaultVersion,
		LatestVersion:  t.LatestVersion(),
		Tags:           tagSet(tags),
	}
}

func (h *Handler) versionXML(t world.LaunchTemplate, v *world.LaunchTemplateVersion) xmlTemplateVersion {
	d := xmlTemplateData{ImageID: v.ImageID, InstanceType: v.InstanceType, KeyName: v.KeyName, UserData: v.UserData}
	if p := v.IamInstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			d.IamInstanceProfile = &xmlProfileSpec{ARN: p}
		} else {
			d.IamInstanceProfile = &xmlProfileSpec{Name: p}
		}
	}
	if m := v.Metadata; m != (world.MetadataOptions{}) {
		d.MetadataOptions = &xmlTemplateMetadata{
			HttpTokens:              m.HttpTokens,
			HttpPutResponseHopLimit: m.HttpPutResponseHopLimit,
			HttpEndpoint:            m.HttpEndpoint,
			InstanceMetadataTags:    m.InstanceMetadataTags,
		}
	}
	for _, ts := range v.TagSpecs {
		d.TagSpecs = append(d.TagSpecs, xmlTagSpec{ResourceType: ts.ResourceType, Tags: kvSet(ts.Tags)})
	}
	return xmlTemplateVersion{
		TemplateID:   t.ID,
		TemplateName: t.Name,
		Number:       v.Number,
		Description:  v.Description,
		CreateTime:   awsproto.Time(v.Created),
		CreatedBy:    h.createdBy(),
		Default:      v.Number == t.DefaultVersion,
		Data:         d,
	}
}

// Request parsing ---------------------------------------------------------------

// templateData is a request's LaunchTemplateData: the modelled members as
// a version, and the names of all top-level members sent (modelled or not),
// which a SourceVersion's members are overridden by.
type templateData struct {
	v   world.LaunchTemplateVersion
	set map[string]bool
}

func parseTemplateData(r request) (templateData, error) {
	d := r.Sub("LaunchTemplateData")
	v := world.LaunchTemplateVersion{
		ImageID:      d.String("ImageId"),
		InstanceType: d.String("InstanceType"),
		KeyName:      d.String("KeyName"),
		UserData:     d.String("UserData"),
	}
	v.IamInstanceProfile = d.String("IamInstanceProfile.Arn")
	if v.IamInstanceProfile == "" {
		v.IamInstanceProfile = d.String("IamInstanceProfile.Name")
	}
	m := d.Sub("MetadataOptions")
	hops, _, err := m.Int("HttpPutResponseHopLimit")
	if err != nil {
		return templateData{}, err
	}
	v.Metadata = world.MetadataOptions{
		HttpTokens:              m.String("HttpTokens"),
		HttpEndpoint:            m.String("HttpEndpoint"),
		HttpPutResponseHopLimit: hops,
		InstanceMetadataTags:    m.String("InstanceMetadataTags"),
	}
	for _, ts := range d.Flat("TagSpecification") {
		kvs := tags(ts, "Tag")
		if err := checkTags(kvs); err != nil {
			return templateData{}, err
		}
		v.TagSpecs = append(v.TagSpecs, world.TagSpec{ResourceType: ts.String("ResourceType"), Tags: kvs})
	}
	return templateData{v: v, set: r.SentUnder("LaunchTemplateData")}, nil
}

// over returns base with every member the request sent replaced by the
// request's (a member replaces the source's as a whole, as on EC2).
func (d templateData) over(base world.LaunchTemplateVersion) world.LaunchTemplateVersion {
	out := world.LaunchTemplateVersion{
		ImageID:            base.ImageID,
		InstanceType:       base.InstanceType,
		KeyName:            base.KeyName,
		UserData:           base.UserData,
		IamInstanceProfile: base.IamInstanceProfile,
		Metadata:           base.Metadata,
		TagSpecs:           slices.Clone(base.TagSpecs),
	}
	if d.set["ImageId"] {
		out.ImageID = d.v.ImageID
	}
	if d.set["InstanceType"] {
		out.InstanceType = d.v.InstanceType
	}
	if d.set["KeyName"] {
		out.KeyName = d.v.KeyName
	}
	if d.set["UserData"] {
		out.UserData = d.v.UserData
	}
	if d.set["IamInstanceProfile"] {
		out.IamInstanceProfile = d.v.IamInstanceProfile
	}
	if d.set["MetadataOptions"] {
		out.Metadata = d.v.Metadata
	}
	if d.set["TagSpecification"] {
		out.TagSpecs = d.v.TagSpecs
	}
	return out
}

// templateTags reads the tags of the template-level TagSpecification.N,
// which may only name the launch-template resource type.
func templateTags(r request) (map[string]string, error) {
	var out map[string]string
	for _, ts := range r.Flat("TagSpecification") {
		if rt := ts.String("ResourceType"); rt != "launch-template" {
			return nil, awsproto.Errorf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		kvs := tags(ts, "Tag")
		if err := checkTags(kvs); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		for _, kv := range kvs {
			out[kv.Key] = kv.Value
		}
	}
	return out, nil
}

// resolveVersion finds "$Latest", "$Default" or a version number.
func resolveVersion(t world.LaunchTemplate, v string) (*world.LaunchTemplateVersion, error) {
	n := 0
	switch v {
	case "$Latest":
		n = t.LatestVersion()
	case "$Default":
		n = t.DefaultVersion
	default:
		n, _ = strconv.Atoi(v)
	}
	if n < 1 || n > len(t.Versions) {
		return nil, awsproto.Errorf("InvalidLaunchTemplateId.VersionNotFound", "Could not find specified version %s for launch template with ID %s.", v, t.ID)
	}
	return t.Versions[n-1], nil
}

// Operations ------------------------------------------------------------------

func (h *Handler) createLaunchTemplate(r request) (any, error) {
	name := r.String("LaunchTemplateName")
	if name == "" {
		return nil, missing("LaunchTemplateName")
	}
	data, err := parseTemplateData(r)
	if err != nil {
		return nil, err
	}
	if len(data.set) == 0 {
		return nil, missing("LaunchTemplateData")
	}
	tags, err := templateTags(r)
	if err != nil {
		return nil, err
	}
	v := data.v
	v.Description = r.String("VersionDescription")
	// The world keeps the map it is given: answer from our own copy.
	t, err := h.w.CreateLaunchTemplate(name, v, maps.Clone(tags))
	if err != nil {
		return nil, err
	}
	return templateResult{h.templateXML(t, tags)}, nil
}

func (h *Handler) createLaunchTemplateVersion(r request) (any, error) {
	id, name := r.String("LaunchTemplateId"), r.String("LaunchTemplateName")
	data, err := parseTemplateData(r)
	if err != nil {
		return nil, err
	}
	src, hasSrc := r.Optional("SourceVersion")
	if len(data.set) == 0 && !hasSrc {
		return nil, missing("LaunchTemplateData")
	}
	v := data.v
	if hasSrc {
		// An unknown template is left to the world to report.
		if t, ok := h.findTemplate(id, name); ok {
			base, err := resolveVersion(t, src)
			if err != nil {
				return nil, err
			}
			v = data.over(*base)
		}
	}
	v.Description = r.String("VersionDescription")
	t, err := h.w.CreateLaunchTemplateVersion(id, name, v)
	if err != nil {
		return nil, err
	}
	return templateVersionResult{h.versionXML(t, t.Versions[len(t.Versions)-1])}, nil
}

// findTemplate looks a template up by id, else by name, as the world does.
func (h *Handler) findTemplate(id, name string) (world.LaunchTemplate, bool) {
	all, err := h.w.LaunchTemplates(nil, nil)
	if err != nil {
		return world.LaunchTemplate{}, false
	}
	for _, t := range all {
		if (id != "" && t.ID == id) || (id == "" && name != "" && t.Name == name) {
			return t, true
		}
	}
	return world.LaunchTemplate{}, false
}

// allTemplateTags returns every launch template's tags, read under the
// world's lock.
func (h *Handler) allTemplateTags() (map[string]map[string]string, error) {
	tags, err := h.w.Tags([]world.InstanceFilter{{Name: "resource-type", Values: []string{"launch-template"}}})
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, t := range tags {
		if out[t.ResourceID] == nil {
			out[t.ResourceID] = map[string]string{}
		}
		out[t.ResourceID][t.Key] = t.Value
	}
	return out, nil
}

func templateKey(t world.LaunchTemplate) string { return sortableTime(t.Created) + "\x00" + t.ID }

func (h *Handler) describeLaunchTemplates(r request) (any, error) {
	fs, err := filters(r.Params)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if f.Name != "launch-template-name" && f.Name != "tag-key" && !strings.HasPrefix(f.Name, "tag:") {
			return nil, invalidFilter(f.Name)
		}
	}
	limit, err := maxResults(r.Params, 1, 200)
	if err != nil {
		return nil, err
	}
	ts, err := h.w.LaunchTemplates(r.FlatStrings("LaunchTemplateId"), r.FlatStrings("LaunchTemplateName"))
	if err != nil {
		return nil, err
	}
	tags, err := h.allTemplateTags()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var match []world.LaunchTemplate
	for _, t := range ts {
		if !seen[t.ID] && templateMatches(t, tags[t.ID], fs) {
			seen[t.ID] = true
			match = append(match, t)
		}
	}
	pg, next, err := page(r.Params, match, templateKey, limit)
	if err != nil {
		return nil, err
	}
	out := describeTemplatesResult{Templates: awsproto.Items[xmlTemplate]{}, NextToken: next}
	for _, t := range pg {
		out.Templates = append(out.Templates, h.templateXML(t, tags[t.ID]))
	}
	return out, nil
}

func templateMatches(t world.LaunchTemplate, tags map[string]string, fs []world.InstanceFilter) bool {
	for _, f := range fs {
		switch {
		case f.Name == "launch-template-name":
			if !globAny(f.Values, t.Name) {
				return false
			}
		case f.Name == "tag-key":
			found := false
			for k := range tags {
				found = found || globAny(f.Values, k)
			}
			if !found {
				return false
			}
		default:
			v, ok := tags[strings.TrimPrefix(f.Name, "tag:")]
			if !ok || !globAny(f.Values, v) {
				return false
			}
		}
	}
	return true
}

// templateVersion is one version with its template.
type templateVersion struct {
	t world.LaunchTemplate
	v *world.LaunchTemplateVersion
}

// versionKey orders versions by template, then newest first.
func versionKey(tv templateVersion) string {
	return templateKey(tv.t) + "\x00" + fmt.Sprintf("%010d", math.MaxInt32-tv.v.Number)
}

func (h *Handler) describeLaunchTemplateVersions(r request) (any, error) {
	id, name := r.String("LaunchTemplateId"), r.String("LaunchTemplateName")
	wanted := r.FlatStrings("LaunchTemplateVersion")
	fs, err := filters(r.Params)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		switch f.Name {
		case "image-id", "instance-type", "is-default-version", "iam-instance-profile":
		default:
			return nil, invalidFilter(f.Name)
		}
	}
	limit, err := maxResults(r.Params, 1, 200)
	if err != nil {
		return nil, err
	}
	minV, err := versionBound(r, "MinVersion")
	if err != nil {
		return nil, err
	}
	maxV, err := versionBound(r, "MaxVersion")
	if err != nil {
		return nil, err
	}
	var ts []world.LaunchTemplate
	switch {
	case id != "":
		ts, err = h.w.LaunchTemplates([]string{id}, nil)
	case name != "":
		ts, err = h.w.LaunchTemplates(nil, []string{name})
	case len(wanted) > 0 && !slices.ContainsFunc(wanted, func(v string) bool { return v != "$Latest" && v != "$Default" }):
		// Without a template, $Latest and $Default describe every template's.
		ts, err = h.w.LaunchTemplates(nil, nil)
	default:
		return nil, missing("LaunchTemplateName or LaunchTemplateId")
	}
	if err != nil {
		return nil, err
	}
	var match []templateVersion
	for _, t := range ts {
		vs := t.Versions
		if len(wanted) > 0 {
			vs = nil
			for _, w := range wanted {
				v, err := resolveVersion(t, w)
				if err != nil {
					return nil, err
				}
				if !slices.Contains(vs, v) {
					vs = append(vs, v)
				}
			}
		}
		for _, v := range vs {
			if (minV > 0 && v.Number < minV) || (maxV > 0 && v.Number > maxV) || !versionMatches(t, v, fs) {
				continue
			}
			match = append(match, templateVersion{t, v})
		}
	}
	pg, next, err := page(r.Params, match, versionKey, limit)
	if err != nil {
		return nil, err
	}
	out := describeVersionsResult{Versions: awsproto.Items[xmlTemplateVersion]{}, NextToken: next}
	for _, tv := range pg {
		out.Versions = append(out.Versions, h.versionXML(tv.t, tv.v))
	}
	return out, nil
}

// versionBound reads MinVersion or MaxVersion (0 when absent).
func versionBound(r request, name string) (int, error) {
	s, ok := r.Optional(name)
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, awsproto.Errorf("InvalidParameterValue", "Invalid value '%s' for %s: must be a launch template version number.", s, name)
	}
	return n, nil
}

func versionMatches(t world.LaunchTemplate, v *world.LaunchTemplateVersion, fs []world.InstanceFilter) bool {
	for _, f := range fs {
		var s string
		switch f.Name {
		case "image-id":
			s = v.ImageID
		case "instance-type":
			s = v.InstanceType
		case "iam-instance-profile":
			s = v.IamInstanceProfile
		case "is-default-version":
			s = strconv.FormatBool(v.Number == t.DefaultVersion)
		}
		if !globAny(f.Values, s) {
			return false
		}
	}
	return true
}

func (h *Handler) deleteLaunchTemplate(r request) (any, error) {
	t, err := h.w.DeleteLaunchTemplate(r.String("LaunchTemplateId"), r.String("LaunchTemplateName"))
	if err != nil {
		return nil, err
	}
	return templateResult{h.templateXML(t, nil)}, nil
}

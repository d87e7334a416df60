package world

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

var (
	amiPattern    = lazyPattern(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`)
	ltNamePattern = lazyPattern(`^[a-zA-Z0-9().\-/_]{3,128}$`)
)

// validMetadata checks IMDS options as both EC2 and Auto Scaling do.
func validMetadata(m MetadataOptions, field string, ec2 bool) *awsproto.Error {
	bad := func(name, v string, allowed string) *awsproto.Error {
		if ec2 {
			return awsproto.Errorf("InvalidParameterValue", "Value (%s) for parameter %s.%s is invalid. Valid values are: %s", v, field, name, allowed)
		}
		return awsproto.Validation("1 validation error detected: Value '%s' at '%s.%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]", v, lowerFirst(field), lowerFirst(name), allowed)
	}
	if m.HttpTokens != "" && m.HttpTokens != "required" && m.HttpTokens != "optional" {
		return bad("HttpTokens", m.HttpTokens, "optional, required")
	}
	if m.HttpEndpoint != "" && m.HttpEndpoint != "enabled" && m.HttpEndpoint != "disabled" {
		return bad("HttpEndpoint", m.HttpEndpoint, "disabled, enabled")
	}
	if m.InstanceMetadataTags != "" && m.InstanceMetadataTags != "enabled" && m.InstanceMetadataTags != "disabled" {
		return bad("InstanceMetadataTags", m.InstanceMetadataTags, "disabled, enabled")
	}
	if m.HttpPutResponseHopLimit != 0 && (m.HttpPutResponseHopLimit < 1 || m.HttpPutResponseHopLimit > 64) {
		return bad("HttpPutResponseHopLimit", strconv.Itoa(m.HttpPutResponseHopLimit), "1-64")
	}
	return nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// CreateLaunchConfiguration adds a launch configuration.
func (w *World) CreateLaunchConfiguration(lc LaunchConfiguration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if lc.Name == "" {
		return awsproto.Validation("1 validation error detected: Value null at 'launchConfigurationName' failed to satisfy constraint: Member must not be null")
	}
	if len(lc.Name) > 255 {
		return awsproto.Validation("1 validation error detected: Value '%s' at 'launchConfigurationName' failed to satisfy constraint: Member must have length less than or equal to 255", lc.Name)
	}
	if _, ok := w.lcs[lc.Name]; ok {
		return awsproto.Errorf("AlreadyExists", "Launch Configuration by this name already exists - A launch configuration already exists with the name %s", lc.Name)
	}
	if lc.ImageID == "" || lc.InstanceType == "" {
		return awsproto.Validation("Valid requests must contain either the InstanceID parameter or both the ImageId and InstanceType parameters.")
	}
	if !amiPattern.MatchString(lc.ImageID) {
		return awsproto.Validation("The image id '[%s]' does not exist", lc.ImageID)
	}
	if err := validMetadata(lc.Metadata, "MetadataOptions", false); err != nil {
		return err
	}
	if len(lc.UserData) > 21847 {
		return awsproto.Validation("1 validation error detected: Value at 'userData' failed to satisfy constraint: Member must have length less than or equal to 21847")
	}
	lc.Created = w.clock.Now().UTC()
	lc.ARN = "arn:aws:autoscaling:" + w.cfg.Region + ":" + w.cfg.Account + ":launchConfiguration:" + w.uuidLocked() + ":launchConfigurationName/" + lc.Name
	w.lcs[lc.Name] = &lc
	return nil
}

// LaunchConfigurations returns the named configurations (all when names is
// empty), sorted by name; unknown names are omitted, as on AWS.
func (w *World) LaunchConfigurations(names []string) []LaunchConfiguration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []LaunchConfiguration
	for name, lc := range w.lcs {
		if len(names) == 0 || slices.Contains(names, name) {
			out = append(out, *lc)
		}
	}
	slices.SortFunc(out, func(a, b LaunchConfiguration) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DeleteLaunchConfiguration removes an unused launch configuration.
func (w *World) DeleteLaunchConfiguration(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if name == "" {
		return awsproto.Validation("1 validation error detected: Value null at 'launchConfigurationName' failed to satisfy constraint: Member must not be null")
	}
	if _, ok := w.lcs[name]; !ok {
		return awsproto.Validation("Launch configuration name not found - Launch configuration %s not found", name)
	}
	for _, g := range w.sortedGroupsLocked() {
		if g.LaunchConfiguration == name {
			return awsproto.Errorf("ResourceInUse", "Cannot delete launch configuration %s because it is attached to AutoScalingGroup %s", name, g.Name)
		}
	}
	delete(w.lcs, name)
	return nil
}

// CreateLaunchTemplate adds a launch template with version 1.
func (e *EC2) CreateLaunchTemplate(name string, v LaunchTemplateVersion, tags map[string]string) (LaunchTemplate, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if name == "" {
		return LaunchTemplate{}, awsproto.Errorf("MissingParameter", "The request must contain the parameter LaunchTemplateName")
	}
	if !ltNamePattern.MatchString(name) {
		return LaunchTemplate{}, awsproto.Errorf("InvalidLaunchTemplateName.MalformedException", "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'")
	}
	for _, t := range w.lts {
		if t.Name == name {
			return LaunchTemplate{}, awsproto.Errorf("InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
		}
	}
	if err := w.validTemplateDataLocked(&v); err != nil {
		return LaunchTemplate{}, err
	}
	now := w.clock.Now().UTC()
	v.Number, v.Created = 1, now
	t := &LaunchTemplate{ID: w.hexIDLocked("lt-0", 16), Name: name, Created: now, DefaultVersion: 1, Versions: []*LaunchTemplateVersion{&v}, Tags: maps.Clone(tags)}
	w.lts[t.ID] = t
	return w.copyTemplate(t), nil
}

// CreateLaunchTemplateVersion adds a version to a template, optionally based
// on an existing one (its fields are the base the new data overrides).
func (e *EC2) CreateLaunchTemplateVersion(id, name string, v LaunchTemplateVersion) (LaunchTemplate, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	t, err := w.templateLocked(id, name)
	if err != nil {
		return LaunchTemplate{}, err
	}
	if err := w.validTemplateDataLocked(&v); err != nil {
		return LaunchTemplate{}, err
	}
	v.Number, v.Created = len(t.Versions)+1, w.clock.Now().UTC()
	t.Versions = append(t.Versions, &v)
	return w.copyTemplate(t), nil
}

func (w *World) validTemplateDataLocked(v *LaunchTemplateVersion) error {
	if v.UserData != "" && !validBase64(v.UserData) {
		return awsproto.Errorf("InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.")
	}
	if v.ImageID != "" && !amiPattern.MatchString(v.ImageID) {
		return awsproto.Errorf("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", v.ImageID)
	}
	if err := validMetadata(v.Metadata, "LaunchTemplateData.MetadataOptions", true); err != nil {
		return err
	}
	return nil
}

// copyTemplate returns a deep copy that callers may read without the lock.
func (w *World) copyTemplate(t *LaunchTemplate) LaunchTemplate {
	c := *t
	c.Tags = maps.Clone(t.Tags)
	c.Versions = make([]*LaunchTemplateVersion, len(t.Versions))
	for i, v := range t.Versions {
		vc := *v
		vc.TagSpecs = make([]TagSpec, len(v.TagSpecs))
		for j, ts := range v.TagSpecs {
			vc.TagSpecs[j] = TagSpec{ResourceType: ts.ResourceType, Tags: slices.Clone(ts.Tags)}
		}
		c.Versions[i] = &vc
	}
	return c
}

// templateLocked finds a template by id or name with EC2's errors.
func (w *World) templateLocked(id, name string) (*LaunchTemplate, error) {
	if id != "" {
		if t, ok := w.lts[id]; ok {
			return t, nil
		}
		return nil, awsproto.Errorf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
	}
	for _, t := range w.lts {
		if t.Name == name {
			return t, nil
		}
	}
	if name == "" {
		return nil, awsproto.Errorf("MissingParameter", "The request must contain the parameter LaunchTemplateName or LaunchTemplateId")
	}
	return nil, awsproto.Errorf("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
}

// LaunchTemplates returns templates by id or name (all when both are
// empty), sorted by creation.
func (e *EC2) LaunchTemplates(ids, names []string) ([]LaunchTemplate, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []LaunchTemplate
	if len(ids) == 0 && len(names) == 0 {
		for _, t := range w.lts {
			out = append(out, w.copyTemplate(t))
		}
	}
	for _, id := range ids {
		t, err := w.templateLocked(id, "")
		if err != nil {
			return nil, err
		}
		out = append(out, w.copyTemplate(t))
	}
	for _, n := range names {
		t, err := w.templateLocked("", n)
		if err != nil {
			return nil, awsproto.Errorf("InvalidLaunchTemplateName.NotFoundException", "At least one of the launch templates specified in the request does not exist.")
		}
		out = append(out, w.copyTemplate(t))
	}
	slices.SortFunc(out, func(a, b LaunchTemplate) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteLaunchTemplate removes a template.
func (e *EC2) DeleteLaunchTemplate(id, name string) (LaunchTemplate, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	t, err := w.templateLocked(id, name)
	if err != nil {
		return LaunchTemplate{}, err
	}
	delete(w.lts, t.ID)
	return w.copyTemplate(t), nil
}

// resolveVersionLocked turns "$Default", "$Latest" or a number into a version.
func (w *World) resolveVersionLocked(t *LaunchTemplate, version string) (*LaunchTemplateVersion, error) {
	switch version {
	case "", "$Default":
		return t.Versions[t.DefaultVersion-1], nil
	case "$Latest":
		return t.Versions[len(t.Versions)-1], nil
	}
	n, err := strconv.Atoi(version)
	if err != nil || n < 1 || n > len(t.Versions) {
		return nil, awsproto.Validation("The specified launch template version, %s, for the launch template %s does not exist.", version, t.ID)
	}
	return t.Versions[n-1], nil
}

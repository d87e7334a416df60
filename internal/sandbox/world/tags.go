package world

import (
	"slices"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

func validGroupTag(t GroupTag) error {
	if t.Key == "" {
		return awsproto.Validation("1 validation error detected: Value null at 'tags.member.key' failed to satisfy constraint: Member must not be null")
	}
	if len(t.Key) > 128 {
		return awsproto.Validation("1 validation error detected: Value '%s' at 'tags.member.key' failed to satisfy constraint: Member must have length less than or equal to 128", t.Key)
	}
	if len(t.Value) > 256 {
		return awsproto.Validation("1 validation error detected: Value '%s' at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256", t.Value)
	}
	if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
		return awsproto.Validation("Tag keys starting with 'aws:' are reserved for internal use")
	}
	return nil
}

func upsertTag(tags []GroupTag, t GroupTag) []GroupTag {
	for i := range tags {
		if tags[i].Key == t.Key {
			tags[i] = t
			return tags
		}
	}
	tags = append(tags, t)
	slices.SortFunc(tags, func(a, b GroupTag) int { return strings.Compare(a.Key, b.Key) })
	return tags
}

// ResourceTag is a group tag as CreateOrUpdateTags and DescribeTags see it.
type ResourceTag struct {
	ResourceID, ResourceType string
	GroupTag
}

// CreateOrUpdateTags sets tags on groups. All are checked before any is set.
func (w *World) CreateOrUpdateTags(tags []ResourceTag) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkTagTargetsLocked(tags, true); err != nil {
		return err
	}
	for _, t := range tags {
		g := w.groups[t.ResourceID]
		g.Tags = upsertTag(g.Tags, t.GroupTag)
		w.emitLocked(Event{Kind: EvTags, Group: g.Name, Detail: "set " + t.Key + "=" + t.Value})
	}
	return nil
}

// DeleteTags removes group tags (a value, when given, must match).
func (w *World) DeleteTags(tags []ResourceTag) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkTagTargetsLocked(tags, false); err != nil {
		return err
	}
	for _, t := range tags {
		g := w.groups[t.ResourceID]
		g.Tags = slices.DeleteFunc(g.Tags, func(x GroupTag) bool { return x.Key == t.Key })
		w.emitLocked(Event{Kind: EvTags, Group: g.Name, Detail: "deleted " + t.Key})
	}
	return nil
}

func (w *World) checkTagTargetsLocked(tags []ResourceTag, write bool) error {
	if tags == nil {
		return notNull("tags")
	}
	for _, t := range tags {
		if t.ResourceType != "" && t.ResourceType != "auto-scaling-group" {
			return awsproto.Validation("Invalid resource type: %s", t.ResourceType)
		}
		if t.ResourceID == "" {
			return awsproto.Validation("1 validation error detected: Value null at 'tags.member.resourceId' failed to satisfy constraint: Member must not be null")
		}
		if _, ok := w.groups[t.ResourceID]; !ok {
			return groupNotFound(t.ResourceID)
		}
		if write {
			if err := validGroupTag(t.GroupTag); err != nil {
				return err
			}
		} else if t.Key == "" {
			return awsproto.Validation("1 validation error detected: Value null at 'tags.member.key' failed to satisfy constraint: Member must not be null")
		}
	}
	return nil
}

// TagFilter is a DescribeTags filter (auto-scaling-group, key, value,
// propagate-at-launch).
type TagFilter struct {
	Name   string
	Values []string
}

// GroupTags returns the tags matching every filter, by group then key.
func (w *World) GroupTags(filters []TagFilter) ([]ResourceTag, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range filters {
		switch f.Name {
		case "auto-scaling-group", "key", "value", "propagate-at-launch":
		default:
			return nil, awsproto.Validation("Filter type %s is not correct. Allowed Filter types are: auto-scaling-group key value propagate-at-launch", f.Name)
		}
	}
	var out []ResourceTag
	for _, g := range w.sortedGroupsLocked() {
		for _, t := range g.Tags {
			rt := ResourceTag{ResourceID: g.Name, ResourceType: "auto-scaling-group", GroupTag: t}
			if tagMatches(rt, filters) {
				out = append(out, rt)
			}
		}
	}
	return out, nil
}

func tagMatches(t ResourceTag, filters []TagFilter) bool {
	for _, f := range filters {
		var v string
		switch f.Name {
		case "auto-scaling-group":
			v = t.ResourceID
		case "key":
			v = t.Key
		case "value":
			v = t.Value
		case "propagate-at-launch":
			v = "false"
			if t.PropagateAtLaunch {
				v = "true"
			}
		}
		if !slices.Contains(f.Values, v) {
			return false
		}
	}
	return true
}

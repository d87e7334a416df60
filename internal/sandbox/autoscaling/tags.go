package autoscaling

import (
	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// parseTag reads one Tags.member.N structure.
func parseTag(t awsproto.Params) (world.ResourceTag, error) {
	propagate, _, err := t.Bool("PropagateAtLaunch")
	if err != nil {
		return world.ResourceTag{}, err
	}
	return world.ResourceTag{
		ResourceID:   t.String("ResourceId"),
		ResourceType: t.String("ResourceType"),
		GroupTag:     world.GroupTag{Key: t.String("Key"), Value: t.String("Value"), PropagateAtLaunch: propagate},
	}, nil
}

// parseTags reads Tags.member.N; nil when the list was not sent at all.
func parseTags(r request) ([]world.ResourceTag, error) {
	members := r.Members("Tags")
	if members == nil {
		return nil, nil
	}
	tags := make([]world.ResourceTag, 0, len(members))
	for _, m := range members {
		t, err := parseTag(m)
		if err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, nil
}

func (h *Handler) createOrUpdateTags(r request) (any, error) {
	tags, err := parseTags(r)
	if err != nil {
		return nil, err
	}
	if err := h.w.CreateOrUpdateTags(tags); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

func (h *Handler) deleteTags(r request) (any, error) {
	tags, err := parseTags(r)
	if err != nil {
		return nil, err
	}
	if err := h.w.DeleteTags(tags); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

type tagsResult struct {
	Tags      awsproto.Members[xmlTag]
	NextToken string `xml:",omitempty"`
}

func (h *Handler) describeTags(r request) (any, error) {
	limit, err := maxRecords(r.Params, 50, 100)
	if err != nil {
		return nil, err
	}
	var filters []world.TagFilter
	for _, f := range r.Members("Filters") {
		filters = append(filters, world.TagFilter{Name: f.String("Name"), Values: f.Strings("Values")})
	}
	tags, err := h.w.GroupTags(filters)
	if err != nil {
		return nil, err
	}
	key := func(t world.ResourceTag) string { return t.ResourceID + "\x00" + t.Key }
	page, next, err := paginate(tags, key, true, "tag", r.String("NextToken"), limit)
	if err != nil {
		return nil, err
	}
	out := tagsResult{Tags: awsproto.Members[xmlTag]{}, NextToken: next}
	for _, t := range page {
		out.Tags = append(out.Tags, xmlTag{ResourceID: t.ResourceID, ResourceType: t.ResourceType, Key: t.Key, Value: t.Value, PropagateAtLaunch: t.PropagateAtLaunch})
	}
	return out, nil
}

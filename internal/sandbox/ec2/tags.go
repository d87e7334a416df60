package ec2

import (
	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

type returnResult struct {
	Return bool `xml:"return"`
}

type xmlTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResult struct {
	Tags      awsproto.Items[xmlTagDescription] `xml:"tagSet"`
	NextToken string                            `xml:"nextToken,omitempty"`
}

func (h *Handler) createTags(r request) (any, error) {
	if err := h.w.CreateTags(r.FlatStrings("ResourceId"), tags(r.Params, "Tag")); err != nil {
		return nil, err
	}
	return returnResult{true}, nil
}

// deleteTags removes tags: a Tag.N.Key sent without Tag.N.Value deletes the
// tag whatever its value; a Value, even empty, must match.
func (h *Handler) deleteTags(r request) (any, error) {
	var keys []string
	var values []*string
	for _, t := range r.Flat("Tag") {
		keys = append(keys, t.String("Key"))
		if v, ok := t.Optional("Value"); ok {
			values = append(values, &v)
		} else {
			values = append(values, nil)
		}
	}
	if err := h.w.DeleteTags(r.FlatStrings("ResourceId"), keys, values); err != nil {
		return nil, err
	}
	return returnResult{true}, nil
}

func tagKey(t world.EC2Tag) string { return t.ResourceID + "\x00" + t.Key }

func (h *Handler) describeTags(r request) (any, error) {
	fs, err := filters(r.Params)
	if err != nil {
		return nil, err
	}
	limit, err := maxResults(r.Params, 5, 1000)
	if err != nil {
		return nil, err
	}
	all, err := h.w.Tags(fs)
	if err != nil {
		return nil, err
	}
	pg, next, err := page(r.Params, all, tagKey, limit)
	if err != nil {
		return nil, err
	}
	out := describeTagsResult{Tags: awsproto.Items[xmlTagDescription]{}, NextToken: next}
	for _, t := range pg {
		out.Tags = append(out.Tags, xmlTagDescription{ResourceID: t.ResourceID, ResourceType: t.ResourceType, Key: t.Key, Value: t.Value})
	}
	return out, nil
}

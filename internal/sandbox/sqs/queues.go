package sqs

import (
	"maps"
	"slices"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

// Query maps and lists ----------------------------------------------------------

// queryMap reads a flattened query map "<name>.N.<key>" / "<name>.N.<value>"
// (Attribute.1.Name/Value, Tag.1.Key/Value). Absent, it is nil.
func queryMap(p awsproto.Params, name, key, value string) map[string]string {
	entries := p.Flat(name)
	if entries == nil {
		return nil
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.String(key)] = e.String(value)
	}
	return out
}

// optInt reads an optional integer parameter.
func optInt(p awsproto.Params, name string) (*int, error) {
	n, ok, err := p.Int(name)
	if err != nil {
		return nil, invalidValue(name, p.String(name), "Must be an integer.")
	}
	if !ok {
		return nil, nil
	}
	return &n, nil
}

// sortedPairs returns a map's entries in key order.
func sortedPairs[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// Queue operations ---------------------------------------------------------------

type queueIn struct {
	QueueUrl string
}

func queueQuery(p awsproto.Params) (queueIn, error) {
	return queueIn{QueueUrl: p.String("QueueUrl")}, nil
}

type queueURLOut struct {
	QueueUrl string `json:"QueueUrl" xml:"QueueUrl"`
}

type createQueueIn struct {
	QueueName  string
	Attributes map[string]string
	Tags       map[string]string `json:"tags"`
}

func createQueueQuery(p awsproto.Params) (createQueueIn, error) {
	return createQueueIn{
		QueueName:  p.String("QueueName"),
		Attributes: queryMap(p, "Attribute", "Name", "Value"),
		Tags:       queryMap(p, "Tag", "Key", "Value"),
	}, nil
}

func (h *Handler) createQueue(c call, in createQueueIn) (output, error) {
	if err := h.q.CreateQueue(messaging.CreateQueueInput{Name: in.QueueName, Attributes: in.Attributes, Tags: in.Tags}); err != nil {
		return nil, err
	}
	return same{queueURLOut{h.queueURL(c, in.QueueName)}}, nil
}

type getQueueURLIn struct {
	QueueName              string
	QueueOwnerAWSAccountId string
}

func getQueueURLQuery(p awsproto.Params) (getQueueURLIn, error) {
	return getQueueURLIn{QueueName: p.String("QueueName"), QueueOwnerAWSAccountId: p.String("QueueOwnerAWSAccountId")}, nil
}

func (h *Handler) getQueueURL(c call, in getQueueURLIn) (output, error) {
	q, err := h.q.GetQueue(in.QueueName, in.QueueOwnerAWSAccountId)
	if err != nil {
		return nil, err
	}
	return same{queueURLOut{h.queueURL(c, q.Name)}}, nil
}

type listQueuesIn struct {
	QueueNamePrefix string
	NextToken       string
	MaxResults      *int
}

func listQueuesQuery(p awsproto.Params) (listQueuesIn, error) {
	n, err := optInt(p, "MaxResults")
	return listQueuesIn{QueueNamePrefix: p.String("QueueNamePrefix"), NextToken: p.String("NextToken"), MaxResults: n}, err
}

// queueURLsOut is ListQueues' and ListDeadLetterSourceQueues' result. The
// JSON member is QueueUrls for the first and queueUrls for the second.
type queueURLsOut struct {
	jsonName  string
	URLs      []string
	NextToken string
}

func (o queueURLsOut) jsonBody() any {
	body := map[string]any{}
	if len(o.URLs) > 0 || o.jsonName == "queueUrls" { // queueUrls is a required member
		body[o.jsonName] = append([]string{}, o.URLs...)
	}
	if o.NextToken != "" {
		body["NextToken"] = o.NextToken
	}
	return body
}

func (o queueURLsOut) xmlResult() any {
	return struct {
		URLs      []string `xml:"QueueUrl"`
		NextToken string   `xml:"NextToken,omitempty"`
	}{o.URLs, o.NextToken}
}

func (h *Handler) listQueues(c call, in listQueuesIn) (output, error) {
	max := 0
	if in.MaxResults != nil {
		if *in.MaxResults < 1 {
			return nil, invalidValue("MaxResults", *in.MaxResults, "MaxResults must be an integer between 1 and 1000.")
		}
		max = *in.MaxResults
	}
	names, next, err := h.q.ListQueues(in.QueueNamePrefix, max, in.NextToken)
	if err != nil {
		return nil, err
	}
	return queueURLsOut{jsonName: "QueueUrls", URLs: h.urls(c, names), NextToken: next}, nil
}

func (h *Handler) urls(c call, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = h.queueURL(c, n)
	}
	return out
}

type listDLQSourcesIn struct {
	QueueUrl   string
	NextToken  string
	MaxResults *int
}

func listDLQSourcesQuery(p awsproto.Params) (listDLQSourcesIn, error) {
	n, err := optInt(p, "MaxResults")
	return listDLQSourcesIn{QueueUrl: p.String("QueueUrl"), NextToken: p.String("NextToken"), MaxResults: n}, err
}

func (h *Handler) listDeadLetterSourceQueues(c call, in listDLQSourcesIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	max := 0
	if in.MaxResults != nil {
		if *in.MaxResults < 1 {
			return nil, invalidValue("MaxResults", *in.MaxResults, "MaxResults must be an integer between 1 and 1000.")
		}
		max = *in.MaxResults
	}
	names, next, err := h.q.DeadLetterSourceQueues(name, max, in.NextToken)
	if err != nil {
		return nil, err
	}
	return queueURLsOut{jsonName: "queueUrls", URLs: h.urls(c, names), NextToken: next}, nil
}

func (h *Handler) deleteQueue(c call, in queueIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return noOutput{}, h.q.DeleteQueue(name)
}

func (h *Handler) purgeQueue(c call, in queueIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return noOutput{}, h.q.PurgeQueue(name)
}

// nameValue is a flattened map entry in XML: <Attribute><Name/><Value/>.
type nameValue struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

func nameValues(m map[string]string) []nameValue {
	out := make([]nameValue, 0, len(m))
	for _, k := range sortedPairs(m) {
		out = append(out, nameValue{k, m[k]})
	}
	return out
}

type getQueueAttributesIn struct {
	QueueUrl       string
	AttributeNames []string
}

func getQueueAttributesQuery(p awsproto.Params) (getQueueAttributesIn, error) {
	return getQueueAttributesIn{QueueUrl: p.String("QueueUrl"), AttributeNames: p.FlatStrings("AttributeName")}, nil
}

type attributesOut map[string]string

func (o attributesOut) jsonBody() any {
	if len(o) == 0 {
		return nil
	}
	return struct{ Attributes map[string]string }{o}
}

func (o attributesOut) xmlResult() any {
	return struct {
		Attributes []nameValue `xml:"Attribute"`
	}{nameValues(o)}
}

func (h *Handler) getQueueAttributes(c call, in getQueueAttributesIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	attrs, err := h.q.GetQueueAttributes(name, in.AttributeNames)
	if err != nil {
		return nil, err
	}
	return attributesOut(attrs), nil
}

type setQueueAttributesIn struct {
	QueueUrl   string
	Attributes map[string]string
}

func setQueueAttributesQuery(p awsproto.Params) (setQueueAttributesIn, error) {
	return setQueueAttributesIn{QueueUrl: p.String("QueueUrl"), Attributes: queryMap(p, "Attribute", "Name", "Value")}, nil
}

func (h *Handler) setQueueAttributes(c call, in setQueueAttributesIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.Attributes == nil {
		return nil, missing("Attributes")
	}
	return noOutput{}, h.q.SetQueueAttributes(name, in.Attributes)
}

type tagQueueIn struct {
	QueueUrl string
	Tags     map[string]string
}

func tagQueueQuery(p awsproto.Params) (tagQueueIn, error) {
	return tagQueueIn{QueueUrl: p.String("QueueUrl"), Tags: queryMap(p, "Tag", "Key", "Value")}, nil
}

func (h *Handler) tagQueue(c call, in tagQueueIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return noOutput{}, h.q.TagQueue(name, in.Tags)
}

type untagQueueIn struct {
	QueueUrl string
	TagKeys  []string
}

func untagQueueQuery(p awsproto.Params) (untagQueueIn, error) {
	return untagQueueIn{QueueUrl: p.String("QueueUrl"), TagKeys: p.FlatStrings("TagKey")}, nil
}

func (h *Handler) untagQueue(c call, in untagQueueIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return noOutput{}, h.q.UntagQueue(name, in.TagKeys)
}

type tagsOut map[string]string

func (o tagsOut) jsonBody() any {
	if len(o) == 0 {
		return nil
	}
	return struct{ Tags map[string]string }{o}
}

func (o tagsOut) xmlResult() any {
	type tag struct {
		Key   string `xml:"Key"`
		Value string `xml:"Value"`
	}
	tags := make([]tag, 0, len(o))
	for _, k := range sortedPairs(o) {
		tags = append(tags, tag{k, o[k]})
	}
	return struct {
		Tags []tag `xml:"Tag"`
	}{tags}
}

func (h *Handler) listQueueTags(c call, in queueIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	tags, err := h.q.QueueTags(name)
	if err != nil {
		return nil, err
	}
	return tagsOut(tags), nil
}

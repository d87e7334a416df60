// Package ec2 is the sandbox's EC2 endpoint: the ec2query protocol
// (Version 2016-11-15) translated to and from *world.World methods. It keeps
// no state of its own.
//
// It serves the launch template operations (Create, CreateVersion,
// Describe, DescribeVersions, Delete), DescribeInstances,
// TerminateInstances, GetConsoleOutput and the tag operations (CreateTags,
// DeleteTags, DescribeTags). Any other action fails with AWS's
// InvalidAction. LaunchTemplateData members the world does not model
// (security groups, block devices, network interfaces, …) are accepted and
// dropped. DryRun=true answers DryRunOperation (412) and changes nothing.
//
// Requests are read from the form body as ec2query sends them (lists
// flattened without "member": InstanceId.1, Filter.1.Value.1); responses are
// written with the generic XML writers of package awsproto, never with the
// SDK's serializers, so the sandbox cannot share a misunderstanding with the
// client under test.
package ec2

import (
	"encoding/base64"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// version is the ec2query API version this handler speaks.
const version = "2016-11-15"

// Handler serves EC2 query requests. Create it with New; it is safe for
// concurrent use.
type Handler struct {
	w               *world.EC2
	region, account string
	svc             *awsproto.QueryService
}

// request is one request's parameters (SentUnder names the members sent
// under a prefix).
type request = *awsproto.QueryRequest

// New returns a handler over w.
func New(w *world.World) *Handler {
	h := &Handler{w: w.EC2(), region: w.Region(), account: w.Account()}
	h.svc = &awsproto.QueryService{
		Version:   version,
		EC2:       true,
		ParamCode: "InvalidParameterValue",
		Operations: map[string]awsproto.QueryOperation{
			"CreateLaunchTemplate":           h.createLaunchTemplate,
			"CreateLaunchTemplateVersion":    h.createLaunchTemplateVersion,
			"DescribeLaunchTemplates":        h.describeLaunchTemplates,
			"DescribeLaunchTemplateVersions": h.describeLaunchTemplateVersions,
			"DeleteLaunchTemplate":           h.deleteLaunchTemplate,
			"DescribeInstances":              h.describeInstances,
			"TerminateInstances":             h.terminateInstances,
			"GetConsoleOutput":               h.getConsoleOutput,
			"CreateTags":                     h.createTags,
			"DeleteTags":                     h.deleteTags,
			"DescribeTags":                   h.describeTags,
		},
	}
	return h
}

// ServeHTTP answers one ec2query request. The caller has normally checked
// Version already.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) { h.svc.ServeHTTP(rw, r) }

// WriteError writes e in EC2's error envelope (for faults the router
// injects).
func (h *Handler) WriteError(rw http.ResponseWriter, requestID string, e *awsproto.Error) {
	h.svc.WriteError(rw, requestID, e)
}

// Request helpers ------------------------------------------------------------

func missing(name string) *awsproto.Error {
	return awsproto.Errorf("MissingParameter", "The request must contain the parameter %s", name)
}

// filters reads Filter.N.Name / Filter.N.Value.M.
func filters(p awsproto.Params) ([]world.InstanceFilter, error) {
	var out []world.InstanceFilter
	for _, f := range p.Flat("Filter") {
		name, ok := f.Optional("Name")
		if !ok {
			return nil, invalidFilter("null")
		}
		out = append(out, world.InstanceFilter{Name: name, Values: f.FlatStrings("Value")})
	}
	return out, nil
}

func invalidFilter(name string) *awsproto.Error {
	return awsproto.Errorf("InvalidParameterValue", "The filter '%s' is invalid", name)
}

// tags reads a flattened Tag.N.Key / Tag.N.Value list (an absent Value is
// the empty string).
func tags(p awsproto.Params, name string) []world.KV {
	var out []world.KV
	for _, t := range p.Flat(name) {
		out = append(out, world.KV{Key: t.String("Key"), Value: t.String("Value")})
	}
	return out
}

// checkTags applies EC2's rules for user tags to tags given at creation.
func checkTags(kvs []world.KV) error {
	for _, t := range kvs {
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return awsproto.Errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return awsproto.Errorf("InvalidParameterValue", "Tag key must be 1 to 128 characters and value at most 256 characters")
		}
	}
	return nil
}

// Response helpers -----------------------------------------------------------

// xmlTag is a resource's tag in a tagSet.
type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagSet renders a tag map sorted by key; nil for no tags (tagSet omitted).
func tagSet(m map[string]string) awsproto.Items[xmlTag] {
	if len(m) == 0 {
		return nil
	}
	out := make(awsproto.Items[xmlTag], 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, xmlTag{Key: k, Value: m[k]})
	}
	return out
}

func kvSet(kvs []world.KV) awsproto.Items[xmlTag] {
	out := make(awsproto.Items[xmlTag], 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, xmlTag{Key: kv.Key, Value: kv.Value})
	}
	return out
}

// xmlState is an instance state: code and name.
type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

func state(name string) xmlState { return xmlState{Code: world.EC2StateCode(name), Name: name} }

// Pagination -----------------------------------------------------------------

// tokenPrefix marks the sandbox's own pagination tokens, so that a token
// that merely decodes is still recognised as foreign.
const tokenPrefix = "lifeguard-sandbox/ec2:"

// maxResults reads MaxResults (0 when absent) and checks it against EC2's
// bounds for the operation.
func maxResults(p awsproto.Params, lo, hi int) (int, error) {
	n, ok, err := p.Int("MaxResults")
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, nil
	case n < lo:
		return 0, awsproto.Errorf("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value greater than %d.", n, lo)
	case n > hi:
		return 0, awsproto.Errorf("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value less than %d.", n, hi)
	}
	return n, nil
}

// page returns the items after the request's NextToken, at most limit of
// them (all when limit is 0), and the token for the next page ("" on the
// last). Items are ordered by key; the token names the last key returned,
// so items added or removed between calls never make a page repeat or skip
// one that stays.
func page[T any](p awsproto.Params, items []T, key func(T) string, limit int) ([]T, string, error) {
	keys := make([]string, len(items))
	idx := make([]int, len(items))
	for i := range items {
		idx[i] = i
		keys[i] = key(items[i])
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	start := 0
	if tok := p.String("NextToken"); tok != "" {
		after, err := decodeToken(tok)
		if err != nil {
			return nil, "", err
		}
		start, _ = slices.BinarySearchFunc(idx, after, func(i int, k string) int {
			if keys[i] <= k {
				return -1
			}
			return 1
		})
	}
	end := len(idx)
	if limit > 0 && start+limit < end {
		end = start + limit
	}
	out := make([]T, 0, end-start)
	for _, i := range idx[start:end] {
		out = append(out, items[i])
	}
	next := ""
	if end < len(idx) && end > start {
		next = encodeToken(keys[idx[end-1]])
	}
	return out, next, nil
}

// encodeToken is the NextToken of a page whose last item has key.
func encodeToken(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + key))
}

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), tokenPrefix) {
		return "", invalidToken(tok)
	}
	return strings.TrimPrefix(string(b), tokenPrefix), nil
}

func invalidToken(tok string) error {
	return awsproto.Errorf("InvalidParameterValue", "Value ( %s ) for parameter NextToken is invalid. The token is invalid.", tok)
}

// sortableTimeLayout formats a time so that string order is time order.
const sortableTimeLayout = "2006-01-02T15:04:05.000000000"

// sortableTime formats t so that string order is time order.
func sortableTime(t time.Time) string {
	return t.UTC().Format(sortableTimeLayout)
}

// glob matches EC2 filter values: * any run, ? one character.
func glob(pattern, s string) bool {
	pr, sr := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pr) && (pr[pi] == '?' || pr[pi] == sr[si]):
			pi++
			si++
		case pi < len(pr) && pr[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pr) && pr[pi] == '*' {
		pi++
	}
	return pi == len(pr)
}

// globAny reports whether any pattern matches s.
func globAny(patterns []string, s string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return glob(p, s) })
}

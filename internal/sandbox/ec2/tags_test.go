package ec2_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// describeTags lists tags as "resource/type/key=value", in the order given.
func describeTags(t *testing.T, c *awsec2.Client, filters ...types.Filter) []string {
	t.Helper()
	out, err := c.DescribeTags(t.Context(), &awsec2.DescribeTagsInput{Filters: filters})
	if err != nil {
		t.Fatal(err)
	}
	return tagDescriptions(out.Tags)
}

func tagDescriptions(tags []types.TagDescription) []string {
	var out []string
	for _, td := range tags {
		out = append(out, aws.ToString(td.ResourceId)+"/"+string(td.ResourceType)+"/"+aws.ToString(td.Key)+"="+aws.ToString(td.Value))
	}
	return out
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	lt := e.template(t, "web", fullData())
	ltID := aws.ToString(lt.LaunchTemplateId)
	ids := e.group(t, "web", "web", 2, "")
	slices.Sort(ids)
	a, b := ids[0], ids[1]

	if _, err := e.c.CreateTags(t.Context(), &awsec2.CreateTagsInput{
		Resources: []string{a},
		Tags:      []types.Tag{{Key: aws.String("leader"), Value: aws.String("true")}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.CreateTags(t.Context(), &awsec2.CreateTagsInput{
		Resources: []string{ltID},
		Tags:      []types.Tag{{Key: aws.String("tier"), Value: aws.String("gold")}},
	}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"by resource id", []types.Filter{filter("resource-id", a)}, []string{
			a + "/instance/aws:autoscaling:groupName=web", a + "/instance/leader=true", a + "/instance/team=blue",
		}},
		{"by resource id and type", []types.Filter{filter("resource-id", a), filter("resource-type", "instance")}, []string{
			a + "/instance/aws:autoscaling:groupName=web", a + "/instance/leader=true", a + "/instance/team=blue",
		}},
		{"by resource type", []types.Filter{filter("resource-type", "launch-template")}, []string{ltID + "/launch-template/tier=gold"}},
		{"by key", []types.Filter{filter("key", "leader")}, []string{a + "/instance/leader=true"}},
		{"by value", []types.Filter{filter("value", "gol?")}, []string{ltID + "/launch-template/tier=gold"}},
		{"by tag", []types.Filter{filter("tag:team", "blue")}, []string{a + "/instance/team=blue", b + "/instance/team=blue"}},
		{"by group tag", []types.Filter{filter("key", "aws:autoscaling:groupName"), filter("value", "web")}, []string{
			a + "/instance/aws:autoscaling:groupName=web", b + "/instance/aws:autoscaling:groupName=web",
		}},
	} {
		t.Run("describe "+c.name, func(t *testing.T) {
			if got := describeTags(t, e.c, c.filters...); !slices.Equal(got, c.want) {
				t.Errorf("tags =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}

	t.Run("pagination visits every tag once", func(t *testing.T) {
		all := describeTags(t, e.c)
		if len(all) != 6 {
			t.Fatalf("got %d tags, want 6: %v", len(all), all)
		}
		p := awsec2.NewDescribeTagsPaginator(e.c, &awsec2.DescribeTagsInput{MaxResults: aws.Int32(5)})
		var got []string
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			pages++
			got = append(got, tagDescriptions(out.Tags)...)
		}
		if !slices.Equal(got, all) {
			t.Errorf("paged tags = %v, want %v", got, all)
		}
		if pages != 2 {
			t.Errorf("pages = %d, want 2", pages)
		}
	})

	for _, c := range []struct {
		name     string
		call     func(ctx context.Context) error
		wantCode string
		wantMsg  string
	}{
		{"an unknown tag filter is refused", func(ctx context.Context) error {
			_, err := e.c.DescribeTags(ctx, &awsec2.DescribeTagsInput{Filters: []types.Filter{filter("colour", "red")}})
			return err
		}, "InvalidParameterValue", "The filter 'colour' is invalid"},
		{"reserved keys cannot be set", func(ctx context.Context) error {
			_, err := e.c.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: []string{a}, Tags: []types.Tag{{Key: aws.String("aws:autoscaling:groupName"), Value: aws.String("other")}}})
			return err
		}, "InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use"},
		{"tagging an unknown instance fails", func(ctx context.Context) error {
			_, err := e.c.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: []string{"i-0123456789abcdef0"}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}, "InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"},
		{"tagging without resources is a missing parameter", func(ctx context.Context) error {
			_, err := e.c.CreateTags(ctx, &awsec2.CreateTagsInput{Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, skipValidation)
			return err
		}, "MissingParameter", "The request must contain the parameter resourceIdSet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := apiError(t, c.call(t.Context()))
			if code != c.wantCode || msg != c.wantMsg {
				t.Errorf("error = %s: %s\nwant    %s: %s", code, msg, c.wantCode, c.wantMsg)
			}
		})
	}
}

func TestDeleteTags(t *testing.T) {
	e := newEnv(t)
	e.template(t, "web", &types.RequestLaunchTemplateData{ImageId: aws.String(ami)})
	id := e.group(t, "web", "web", 1, "")[0]

	for _, c := range []struct {
		name  string
		has   *string // the tag's value before the delete
		del   types.Tag
		after string // the tag after ("" when deleted)
	}{
		{"a key without a value deletes whatever the value", aws.String("1"), types.Tag{Key: aws.String("k")}, ""},
		{"a key without a value deletes an empty value", aws.String(""), types.Tag{Key: aws.String("k")}, ""},
		{"a matching value deletes", aws.String("1"), types.Tag{Key: aws.String("k"), Value: aws.String("1")}, ""},
		{"another value keeps the tag", aws.String("1"), types.Tag{Key: aws.String("k"), Value: aws.String("2")}, "k=1"},
		{"an empty value keeps a non-empty tag", aws.String("1"), types.Tag{Key: aws.String("k"), Value: aws.String("")}, "k=1"},
		{"an empty value deletes an empty tag", aws.String(""), types.Tag{Key: aws.String("k"), Value: aws.String("")}, ""},
		{"deleting a tag that is not there succeeds", nil, types.Tag{Key: aws.String("k")}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.has != nil {
				if _, err := e.c.CreateTags(t.Context(), &awsec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("k"), Value: c.has}}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.c.DeleteTags(t.Context(), &awsec2.DeleteTagsInput{Resources: []string{id}, Tags: []types.Tag{c.del}}); err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, s := range describeTags(t, e.c, filter("resource-id", id), filter("key", "k")) {
				_, got, _ = strings.Cut(s, "/instance/")
			}
			if got != c.after {
				t.Errorf("tag after delete = %q, want %q", got, c.after)
			}
			if _, err := e.c.DeleteTags(t.Context(), &awsec2.DeleteTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("k")}}}); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("the group tag cannot be deleted", func(t *testing.T) {
		_, err := e.c.DeleteTags(t.Context(), &awsec2.DeleteTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("aws:autoscaling:groupName")}}})
		code, msg := apiError(t, err)
		if want := "InvalidParameterValue"; code != want {
			t.Errorf("code = %q (%s), want %q", code, msg, want)
		}
	})
}

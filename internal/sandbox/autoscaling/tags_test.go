package autoscaling_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	asg "github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func groupTag(group, key, value string, propagate bool) types.Tag {
	return types.Tag{
		ResourceId: aws.String(group), ResourceType: aws.String("auto-scaling-group"),
		Key: aws.String(key), Value: aws.String(value), PropagateAtLaunch: aws.Bool(propagate),
	}
}

// tagString renders a described tag as group/key=value[propagate].
func tagString(t types.TagDescription) string {
	return fmt.Sprintf("%s/%s=%s[%t]", aws.ToString(t.ResourceId), aws.ToString(t.Key), aws.ToString(t.Value), aws.ToBool(t.PropagateAtLaunch))
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	e.createGroup(t, groupSpec{name: "blue"})
	e.createGroup(t, groupSpec{name: "green"})
	filter := func(name string, values ...string) []types.Filter {
		return []types.Filter{{Name: aws.String(name), Values: values}}
	}
	// Steps run in order against the same world.
	steps := []struct {
		name    string
		set     []types.Tag
		del     []types.Tag
		filters []types.Filter
		want    []string
		wantErr string
	}{
		{
			name: "created tags are listed by group then key",
			set:  []types.Tag{groupTag("green", "env", "dev", false), groupTag("blue", "team", "core", true), groupTag("blue", "env", "prod", true)},
			want: []string{"blue/env=prod[true]", "blue/team=core[true]", "green/env=dev[false]"},
		},
		{
			name:    "filter by group",
			filters: filter("auto-scaling-group", "green"),
			want:    []string{"green/env=dev[false]"},
		},
		{
			name:    "update replaces value and propagation",
			set:     []types.Tag{groupTag("blue", "env", "stage", false)},
			filters: filter("key", "env"),
			want:    []string{"blue/env=stage[false]", "green/env=dev[false]"},
		},
		{
			name:    "filter by propagate-at-launch",
			filters: filter("propagate-at-launch", "true"),
			want:    []string{"blue/team=core[true]"},
		},
		{
			name:    "delete removes the key",
			del:     []types.Tag{{ResourceId: aws.String("blue"), ResourceType: aws.String("auto-scaling-group"), Key: aws.String("env")}},
			filters: filter("auto-scaling-group", "blue"),
			want:    []string{"blue/team=core[true]"},
		},
		{
			name:    "tagging an unknown group fails",
			set:     []types.Tag{groupTag("nope", "k", "v", false)},
			wantErr: "AutoScalingGroup name not found - AutoScalingGroup nope not found",
		},
		{
			name:    "unknown filter fails",
			filters: filter("colour", "blue"),
			wantErr: "Filter type colour is not correct. Allowed Filter types are: auto-scaling-group key value propagate-at-launch",
		},
		{
			name:    "no match is an empty list",
			filters: filter("value", "nothing"),
			want:    []string{},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var err error
			if st.set != nil {
				_, err = e.client.CreateOrUpdateTags(t.Context(), &asg.CreateOrUpdateTagsInput{Tags: st.set})
			}
			if err == nil && st.del != nil {
				_, err = e.client.DeleteTags(t.Context(), &asg.DeleteTagsInput{Tags: st.del})
			}
			var out *asg.DescribeTagsOutput
			if err == nil {
				out, err = e.client.DescribeTags(t.Context(), &asg.DescribeTagsInput{Filters: st.filters})
			}
			if st.wantErr != "" {
				code, msg := apiError(t, err)
				if code != "ValidationError" || msg != st.wantErr {
					t.Fatalf("got %s %q, want ValidationError %q", code, msg, st.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Tags == nil {
				t.Fatal("Tags is nil, want a list")
			}
			got := []string{}
			for _, tag := range out.Tags {
				got = append(got, tagString(tag))
			}
			if fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Errorf("tags = %v, want %v", got, st.want)
			}
		})
	}

	t.Run("pagination visits each tag once", func(t *testing.T) {
		p := asg.NewDescribeTagsPaginator(e.client, &asg.DescribeTagsInput{MaxRecords: aws.Int32(1)})
		var got []string
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range out.Tags {
				got = append(got, tagString(tag))
			}
		}
		if want := []string{"blue/team=core[true]", "green/env=dev[false]"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("visited %v, want %v", got, want)
		}
	})
}

package ec2_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	ami      = "ami-0abcdef1234567890"
	otherAMI = "ami-0fedcba9876543210"
)

var userData = base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hello from the sandbox\n"))

// fullData is launch template data using every member the sandbox models.
func fullData() *types.RequestLaunchTemplateData {
	return &types.RequestLaunchTemplateData{
		ImageId:            aws.String(ami),
		InstanceType:       types.InstanceTypeT3Small,
		KeyName:            aws.String("ops"),
		UserData:           aws.String(userData),
		IamInstanceProfile: &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: aws.String("arn:aws:iam::123456789012:instance-profile/app-role")},
		MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{
			HttpTokens:              types.LaunchTemplateHttpTokensStateRequired,
			HttpEndpoint:            types.LaunchTemplateInstanceMetadataEndpointStateEnabled,
			HttpPutResponseHopLimit: aws.Int32(2),
			InstanceMetadataTags:    types.LaunchTemplateInstanceMetadataTagsStateEnabled,
		},
		TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{
			ResourceType: types.ResourceTypeInstance,
			Tags:         []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}},
		}},
	}
}

func TestCreateLaunchTemplate(t *testing.T) {
	e := newEnv(t)
	out, err := e.c.CreateLaunchTemplate(t.Context(), &awsec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("web"),
		VersionDescription: aws.String("first"),
		LaunchTemplateData: fullData(),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeLaunchTemplate,
			Tags:         []types.Tag{{Key: aws.String("owner"), Value: aws.String("platform")}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lt := out.LaunchTemplate

	t.Run("the template is described as created", func(t *testing.T) {
		if got := aws.ToString(lt.LaunchTemplateId); !strings.HasPrefix(got, "lt-0") || len(got) != 20 {
			t.Errorf("LaunchTemplateId = %q, want lt-0 and 16 hex digits", got)
		}
		if got, want := aws.ToString(lt.LaunchTemplateName), "web"; got != want {
			t.Errorf("LaunchTemplateName = %q, want %q", got, want)
		}
		if got, want := aws.ToString(lt.CreatedBy), "arn:aws:iam::123456789012:root"; got != want {
			t.Errorf("CreatedBy = %q, want %q", got, want)
		}
		if lt.CreateTime == nil || lt.CreateTime.IsZero() {
			t.Errorf("CreateTime = %v, want set", lt.CreateTime)
		}
		if got, want := aws.ToInt64(lt.DefaultVersionNumber), int64(1); got != want {
			t.Errorf("DefaultVersionNumber = %d, want %d", got, want)
		}
		if got, want := aws.ToInt64(lt.LatestVersionNumber), int64(1); got != want {
			t.Errorf("LatestVersionNumber = %d, want %d", got, want)
		}
		if got, want := tagString(lt.Tags), "owner=platform"; got != want {
			t.Errorf("Tags = %s, want %s", got, want)
		}
	})

	t.Run("the version's data round-trips", func(t *testing.T) {
		vs, err := e.c.DescribeLaunchTemplateVersions(t.Context(), &awsec2.DescribeLaunchTemplateVersionsInput{
			LaunchTemplateName: aws.String("web"),
			Versions:           []string{"$Latest"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs.LaunchTemplateVersions) != 1 {
			t.Fatalf("got %d versions, want 1", len(vs.LaunchTemplateVersions))
		}
		v := vs.LaunchTemplateVersions[0]
		d := v.LaunchTemplateData
		for _, c := range []struct{ name, got, want string }{
			{"LaunchTemplateId", aws.ToString(v.LaunchTemplateId), aws.ToString(lt.LaunchTemplateId)},
			{"VersionDescription", aws.ToString(v.VersionDescription), "first"},
			{"ImageId", aws.ToString(d.ImageId), ami},
			{"InstanceType", string(d.InstanceType), "t3.small"},
			{"KeyName", aws.ToString(d.KeyName), "ops"},
			{"UserData", aws.ToString(d.UserData), userData},
			{"IamInstanceProfile.Arn", aws.ToString(d.IamInstanceProfile.Arn), "arn:aws:iam::123456789012:instance-profile/app-role"},
			{"MetadataOptions.HttpTokens", string(d.MetadataOptions.HttpTokens), "required"},
			{"MetadataOptions.HttpEndpoint", string(d.MetadataOptions.HttpEndpoint), "enabled"},
			{"MetadataOptions.InstanceMetadataTags", string(d.MetadataOptions.InstanceMetadataTags), "enabled"},
		} {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
			}
		}
		if got, want := aws.ToInt32(d.MetadataOptions.HttpPutResponseHopLimit), int32(2); got != want {
			t.Errorf("HttpPutResponseHopLimit = %d, want %d", got, want)
		}
		if got, want := aws.ToInt64(v.VersionNumber), int64(1); got != want {
			t.Errorf("VersionNumber = %d, want %d", got, want)
		}
		if !aws.ToBool(v.DefaultVersion) {
			t.Errorf("DefaultVersion = false, want true")
		}
		if len(d.TagSpecifications) != 1 || d.TagSpecifications[0].ResourceType != types.ResourceTypeInstance ||
			tagString(d.TagSpecifications[0].Tags) != "team=blue" {
			t.Errorf("TagSpecifications = %+v, want instance team=blue", d.TagSpecifications)
		}
	})
}

func TestCreateLaunchTemplateVersion(t *testing.T) {
	e := newEnv(t)
	lt := e.template(t, "web", fullData())
	id := lt.LaunchTemplateId

	v2, err := e.c.CreateLaunchTemplateVersion(t.Context(), &awsec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId:   id,
		SourceVersion:      aws.String("1"),
		VersionDescription: aws.String("bigger"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeM5Large},
	})
	if err != nil {
		t.Fatal(err)
	}
	v3, err := e.c.CreateLaunchTemplateVersion(t.Context(), &awsec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(otherAMI)},
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("new versions are numbered and not default", func(t *testing.T) {
		for _, c := range []struct {
			v    *types.LaunchTemplateVersion
			want int64
		}{{v2.LaunchTemplateVersion, 2}, {v3.LaunchTemplateVersion, 3}} {
			if got := aws.ToInt64(c.v.VersionNumber); got != c.want {
				t.Errorf("VersionNumber = %d, want %d", got, c.want)
			}
			if aws.ToBool(c.v.DefaultVersion) {
				t.Errorf("version %d: DefaultVersion = true, want false", c.want)
			}
			if got, want := aws.ToString(c.v.LaunchTemplateId), aws.ToString(id); got != want {
				t.Errorf("version %d: LaunchTemplateId = %q, want %q", c.want, got, want)
			}
		}
	})

	t.Run("a source version's members are kept unless overridden", func(t *testing.T) {
		d := v2.LaunchTemplateVersion.LaunchTemplateData
		if got, want := string(d.InstanceType), "m5.large"; got != want {
			t.Errorf("InstanceType = %q, want %q", got, want)
		}
		if got, want := aws.ToString(d.ImageId), ami; got != want {
			t.Errorf("ImageId = %q, want %q", got, want)
		}
		if got, want := aws.ToString(d.UserData), userData; got != want {
			t.Errorf("UserData = %q, want %q", got, want)
		}
		if d.MetadataOptions == nil || d.MetadataOptions.HttpTokens != types.LaunchTemplateHttpTokensStateRequired {
			t.Errorf("MetadataOptions = %+v, want HttpTokens required", d.MetadataOptions)
		}
		if got, want := aws.ToString(v2.LaunchTemplateVersion.VersionDescription), "bigger"; got != want {
			t.Errorf("VersionDescription = %q, want %q", got, want)
		}
	})

	t.Run("without a source version only the data sent is kept", func(t *testing.T) {
		d := v3.LaunchTemplateVersion.LaunchTemplateData
		if got, want := aws.ToString(d.ImageId), otherAMI; got != want {
			t.Errorf("ImageId = %q, want %q", got, want)
		}
		if d.UserData != nil || d.MetadataOptions != nil || d.InstanceType != "" {
			t.Errorf("data = %+v, want only ImageId", d)
		}
	})

	t.Run("versions are described newest first and by alias", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			versions []string
			want     []int64
		}{
			{"all versions", nil, []int64{3, 2, 1}},
			{"$Default is version 1", []string{"$Default"}, []int64{1}},
			{"$Latest is version 3", []string{"$Latest"}, []int64{3}},
			{"numbers and aliases deduplicated", []string{"2", "$Latest", "3"}, []int64{3, 2}},
		} {
			t.Run(c.name, func(t *testing.T) {
				out, err := e.c.DescribeLaunchTemplateVersions(t.Context(), &awsec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: id, Versions: c.versions})
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				for _, v := range out.LaunchTemplateVersions {
					got = append(got, aws.ToInt64(v.VersionNumber))
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("versions = %v, want %v", got, c.want)
				}
			})
		}
	})

	t.Run("describe's template reports the latest version", func(t *testing.T) {
		out, err := e.c.DescribeLaunchTemplates(t.Context(), &awsec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{aws.ToString(id)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.LaunchTemplates) != 1 {
			t.Fatalf("got %d templates, want 1", len(out.LaunchTemplates))
		}
		lt := out.LaunchTemplates[0]
		if got, want := aws.ToInt64(lt.LatestVersionNumber), int64(3); got != want {
			t.Errorf("LatestVersionNumber = %d, want %d", got, want)
		}
		if got, want := aws.ToInt64(lt.DefaultVersionNumber), int64(1); got != want {
			t.Errorf("DefaultVersionNumber = %d, want %d", got, want)
		}
	})
}

func TestDescribeLaunchTemplates(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ name, team string }{{"web-blue", "blue"}, {"web-green", "green"}, {"batch", "blue"}} {
		_, err := e.c.CreateLaunchTemplate(t.Context(), &awsec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String(c.name),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(ami)},
			TagSpecifications: []types.TagSpecification{{
				ResourceType: types.ResourceTypeLaunchTemplate,
				Tags:         []types.Tag{{Key: aws.String("team"), Value: aws.String(c.team)}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		in   awsec2.DescribeLaunchTemplatesInput
		want []string
	}{
		{"everything without filters", awsec2.DescribeLaunchTemplatesInput{}, []string{"batch", "web-blue", "web-green"}},
		{"by name", awsec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"web-green"}}, []string{"web-green"}},
		{"by a name filter with a wildcard", awsec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{{Name: aws.String("launch-template-name"), Values: []string{"web-*"}}}}, []string{"web-blue", "web-green"}},
		{"by a name filter with a one-character wildcard", awsec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{{Name: aws.String("launch-template-name"), Values: []string{"batc?", "web-?"}}}}, []string{"batch"}},
		{"by tag", awsec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{{Name: aws.String("tag:team"), Values: []string{"blue"}}}}, []string{"batch", "web-blue"}},
		{"by tag and name", awsec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{
			{Name: aws.String("tag:team"), Values: []string{"blue"}},
			{Name: aws.String("launch-template-name"), Values: []string{"web-*"}},
		}}, []string{"web-blue"}},
		{"by tag key", awsec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{"owner"}}}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := e.c.DescribeLaunchTemplates(t.Context(), &c.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, lt := range out.LaunchTemplates {
				got = append(got, aws.ToString(lt.LaunchTemplateName))
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("templates = %v, want %v", got, c.want)
			}
		})
	}

	t.Run("$Latest without a template describes every template's latest version", func(t *testing.T) {
		out, err := e.c.DescribeLaunchTemplateVersions(t.Context(), &awsec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest"}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range out.LaunchTemplateVersions {
			got = append(got, aws.ToString(v.LaunchTemplateName)+"/"+itoa(int(aws.ToInt64(v.VersionNumber))))
		}
		slices.Sort(got)
		if want := []string{"batch/1", "web-blue/1", "web-green/1"}; !slices.Equal(got, want) {
			t.Errorf("versions = %v, want %v", got, want)
		}
	})

	t.Run("pagination visits every template once", func(t *testing.T) {
		p := awsec2.NewDescribeLaunchTemplatesPaginator(e.c, &awsec2.DescribeLaunchTemplatesInput{MaxResults: aws.Int32(1)})
		var got []string
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, lt := range out.LaunchTemplates {
				got = append(got, aws.ToString(lt.LaunchTemplateName))
			}
		}
		slices.Sort(got)
		if want := []string{"batch", "web-blue", "web-green"}; !slices.Equal(got, want) {
			t.Errorf("templates = %v, want %v", got, want)
		}
		if pages != 3 {
			t.Errorf("pages = %d, want 3", pages)
		}
	})
}

func TestDeleteLaunchTemplate(t *testing.T) {
	e := newEnv(t)
	lt := e.template(t, "web", fullData())
	out, err := e.c.DeleteLaunchTemplate(t.Context(), &awsec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.LaunchTemplate.LaunchTemplateId), aws.ToString(lt.LaunchTemplateId); got != want {
		t.Errorf("deleted LaunchTemplateId = %q, want %q", got, want)
	}
	_, err = e.c.DescribeLaunchTemplates(t.Context(), &awsec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{aws.ToString(lt.LaunchTemplateId)}})
	code, msg := apiError(t, err)
	if want := "InvalidLaunchTemplateId.NotFound"; code != want {
		t.Errorf("describing a deleted template: code %q (%s), want %q", code, msg, want)
	}
}

func TestLaunchTemplateErrors(t *testing.T) {
	e := newEnv(t)
	lt := e.template(t, "web", fullData())
	for _, c := range []struct {
		name     string
		call     func(ctx context.Context) error
		wantCode string
		wantMsg  string
	}{
		{"a taken name is refused", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"), LaunchTemplateData: fullData()})
			return err
		}, "InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use."},
		{"a malformed name is refused", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("a b"), LaunchTemplateData: fullData()})
			return err
		}, "InvalidLaunchTemplateName.MalformedException", ""},
		{"empty launch template data is a missing parameter", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("empty"), LaunchTemplateData: &types.RequestLaunchTemplateData{}})
			return err
		}, "MissingParameter", "The request must contain the parameter LaunchTemplateData"},
		{"user data that is not base64 is refused", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("raw"), LaunchTemplateData: &types.RequestLaunchTemplateData{UserData: aws.String("#!/bin/sh")}})
			return err
		}, "InvalidUserData.Malformed", "Invalid BASE64 encoding of user data."},
		{"a hop limit out of range is refused", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("hops"), LaunchTemplateData: &types.RequestLaunchTemplateData{
				MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(65)},
			}})
			return err
		}, "InvalidParameterValue", "Value (65) for parameter LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit is invalid. Valid values are: 1-64"},
		{"template tags must be for the launch template", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("tagged"), LaunchTemplateData: fullData(),
				TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}})
			return err
		}, "InvalidParameterValue", "'instance' is not a valid taggable resource type for this operation."},
		{"a source version that does not exist is refused", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplateVersion(ctx, &awsec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: lt.LaunchTemplateId, SourceVersion: aws.String("9"),
				LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeT3Micro}})
			return err
		}, "InvalidLaunchTemplateId.VersionNotFound", "Could not find specified version 9 for launch template with ID " + aws.ToString(lt.LaunchTemplateId) + "."},
		{"a version of an unknown template is refused", func(ctx context.Context) error {
			_, err := e.c.CreateLaunchTemplateVersion(ctx, &awsec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("nope"), SourceVersion: aws.String("1"),
				LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeT3Micro}})
			return err
		}, "InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name nope, does not exist."},
		{"describing versions of an unknown template id fails", func(ctx context.Context) error {
			_, err := e.c.DescribeLaunchTemplateVersions(ctx, &awsec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String("lt-00000000000000000")})
			return err
		}, "InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID lt-00000000000000000, does not exist."},
		{"describing a version that does not exist fails", func(ctx context.Context) error {
			_, err := e.c.DescribeLaunchTemplateVersions(ctx, &awsec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("web"), Versions: []string{"2"}})
			return err
		}, "InvalidLaunchTemplateId.VersionNotFound", ""},
		{"an unknown template filter is refused", func(ctx context.Context) error {
			_, err := e.c.DescribeLaunchTemplates(ctx, &awsec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}})
			return err
		}, "InvalidParameterValue", "The filter 'colour' is invalid"},
		{"deleting an unknown template fails", func(ctx context.Context) error {
			_, err := e.c.DeleteLaunchTemplate(ctx, &awsec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String("lt-00000000000000000")})
			return err
		}, "InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID lt-00000000000000000, does not exist."},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := apiError(t, c.call(t.Context()))
			if code != c.wantCode {
				t.Errorf("code = %q (%s), want %q", code, msg, c.wantCode)
			}
			if c.wantMsg != "" && msg != c.wantMsg {
				t.Errorf("message = %q, want %q", msg, c.wantMsg)
			}
		})
	}
}

// tagString renders tags sorted as k=v,k=v.
func tagString(tags []types.Tag) string {
	var kv []string
	for _, t := range tags {
		kv = append(kv, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

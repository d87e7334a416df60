package autoscaling

import (
	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func (h *Handler) createLaunchConfiguration(r request) (any, error) {
	if r.Sent("InstanceId") {
		return nil, notModelled("InstanceId (launch configurations copied from an instance)")
	}
	mo := r.Sub("MetadataOptions")
	hop, _, err := mo.Int("HttpPutResponseHopLimit")
	if err != nil {
		return nil, err
	}
	lc := world.LaunchConfiguration{
		Name:               r.String("LaunchConfigurationName"),
		ImageID:            r.String("ImageId"),
		InstanceType:       r.String("InstanceType"),
		KeyName:            r.String("KeyName"),
		SecurityGroups:     r.Strings("SecurityGroups"),
		UserData:           r.String("UserData"),
		IamInstanceProfile: r.String("IamInstanceProfile"),
		Metadata: world.MetadataOptions{
			HttpTokens:              mo.String("HttpTokens"),
			HttpEndpoint:            mo.String("HttpEndpoint"),
			HttpPutResponseHopLimit: hop,
		},
	}
	if err := h.w.CreateLaunchConfiguration(lc); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

func (h *Handler) deleteLaunchConfiguration(r request) (any, error) {
	if err := h.w.DeleteLaunchConfiguration(r.String("LaunchConfigurationName")); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

type xmlMetadataOptions struct {
	HttpTokens              string `xml:",omitempty"`
	HttpPutResponseHopLimit int    `xml:",omitempty"`
	HttpEndpoint            string `xml:",omitempty"`
}

type xmlInstanceMonitoring struct {
	Enabled bool
}

type xmlLaunchConfiguration struct {
	LaunchConfigurationName      string
	LaunchConfigurationARN       string
	ImageID                      string `xml:"ImageId"`
	KeyName                      string
	SecurityGroups               awsproto.Members[string]
	ClassicLinkVPCSecurityGroups awsproto.Members[string]
	UserData                     string
	InstanceType                 string
	KernelID                     string `xml:"KernelId"`
	RamdiskID                    string `xml:"RamdiskId"`
	BlockDeviceMappings          awsproto.Members[string]
	InstanceMonitoring           xmlInstanceMonitoring
	IamInstanceProfile           string `xml:",omitempty"`
	CreatedTime                  awsproto.Time
	EbsOptimized                 bool
	MetadataOptions              *xmlMetadataOptions `xml:",omitempty"`
}

type launchConfigurationsResult struct {
	LaunchConfigurations awsproto.Members[xmlLaunchConfiguration]
	NextToken            string `xml:",omitempty"`
}

func (h *Handler) describeLaunchConfigurations(r request) (any, error) {
	limit, err := maxRecords(r.Params, 50, 100)
	if err != nil {
		return nil, err
	}
	lcs := h.w.LaunchConfigurations(r.Strings("LaunchConfigurationNames"))
	page, next, err := paginate(lcs, func(lc world.LaunchConfiguration) string { return lc.Name }, true, "lc", r.String("NextToken"), limit)
	if err != nil {
		return nil, err
	}
	out := launchConfigurationsResult{LaunchConfigurations: awsproto.Members[xmlLaunchConfiguration]{}, NextToken: next}
	for _, lc := range page {
		x := xmlLaunchConfiguration{
			LaunchConfigurationName: lc.Name,
			LaunchConfigurationARN:  lc.ARN,
			ImageID:                 lc.ImageID,
			KeyName:                 lc.KeyName,
			SecurityGroups:          lc.SecurityGroups,
			UserData:                lc.UserData,
			InstanceType:            lc.InstanceType,
			InstanceMonitoring:      xmlInstanceMonitoring{Enabled: true},
			IamInstanceProfile:      lc.IamInstanceProfile,
			CreatedTime:             awsproto.Time(lc.Created),
		}
		if m := lc.Metadata; m.HttpTokens != "" || m.HttpEndpoint != "" || m.HttpPutResponseHopLimit != 0 {
			x.MetadataOptions = &xmlMetadataOptions{HttpTokens: m.HttpTokens, HttpPutResponseHopLimit: m.HttpPutResponseHopLimit, HttpEndpoint: m.HttpEndpoint}
		}
		out.LaunchConfigurations = append(out.LaunchConfigurations, x)
	}
	return out, nil
}

package imds

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// awsTime is how IMDS writes times: RFC 3339, UTC, whole seconds.
const awsTime = "2006-01-02T15:04:05Z"

// credentialLifetime is how far in the future role credentials expire.
const credentialLifetime = 6 * time.Hour

// node is one metadata item: a leaf with a body, or a directory.
type node struct {
	body  []byte
	ctype string
	isDir bool
	slash bool // the listing marks subdirectories with a trailing slash
	kids  []entry
}

type entry struct {
	name string
	n    *node
}

func leaf(s string) *node                 { return &node{body: []byte(s), ctype: "text/plain"} }
func dir(slash bool, kids ...entry) *node { return &node{isDir: true, slash: slash, kids: kids} }

// content returns what a GET of n answers: a leaf's body, or a directory's
// listing (names one a line, no final newline).
func (n *node) content() ([]byte, string) {
	if !n.isDir {
		return n.body, n.ctype
	}
	names := make([]string, len(n.kids))
	for i, k := range n.kids {
		names[i] = k.name
		if n.slash && k.n.isDir {
			names[i] += "/"
		}
	}
	return []byte(strings.Join(names, "\n")), "text/plain"
}

func (n *node) child(name string) *node {
	for _, k := range n.kids {
		if k.name == name {
			return k.n
		}
	}
	return nil
}

// lookup resolves an absolute request path in root, nil when absent. One
// trailing slash is ignored; a version prefix (a date, "1.0") reads as
// "latest".
func lookup(root *node, path string) *node {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return nil
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return root
	}
	n := root
	for i, seg := range strings.Split(rest, "/") {
		if i == 0 && isVersion(seg) {
			seg = "latest"
		}
		if !n.isDir {
			return nil
		}
		if n = n.child(seg); n == nil {
			return nil
		}
	}
	return n
}

// isVersion reports whether s names an IMDS API version: "1.0" or a date
// such as 2021-03-23.
func isVersion(s string) bool {
	if s == "1.0" {
		return true
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// tree builds the instance's whole metadata tree from md at now.
func tree(md world.Metadata, now time.Time) *node {
	latest := dir(false,
		entry{"dynamic", dir(true,
			entry{"instance-identity", dir(true,
				entry{"document", identityDocument(md)},
			)},
		)},
		entry{"meta-data", metaData(md, now)},
	)
	if len(md.UserData) > 0 {
		latest.kids = append(latest.kids, entry{"user-data", &node{body: md.UserData, ctype: "application/octet-stream"}})
	}
	return dir(false, entry{"latest", latest})
}

func metaData(md world.Metadata, now time.Time) *node {
	kids := []entry{
		{"ami-id", leaf(md.ImageID)},
		{"instance-id", leaf(md.InstanceID)},
		// The sandbox launches no spot instances (a spot notice can still
		// be sent to any instance, for tests).
		{"instance-life-cycle", leaf("on-demand")},
		{"instance-type", leaf(md.InstanceType)},
		{"reservation-id", leaf(md.ReservationID)},
		{"iam", iam(md, now)},
	}
	if md.PrivateIP != "" {
		host := hostname(md.PrivateIP, md.Region)
		kids = append(kids,
			entry{"local-ipv4", leaf(md.PrivateIP)},
			entry{"local-hostname", leaf(host)},
			entry{"hostname", leaf(host)},
		)
		if mac := macAddress(md.PrivateIP); mac != "" {
			kids = append(kids, entry{"mac", leaf(mac)})
		}
	}
	placement := dir(true,
		entry{"availability-zone", leaf(md.AZ)},
		entry{"region", leaf(md.Region)},
	)
	if id := zoneID(md.Region, md.AZ); id != "" {
		placement.kids = append(placement.kids, entry{"availability-zone-id", leaf(id)})
	}
	sortEntries(placement.kids)
	kids = append(kids, entry{"placement", placement})
	if md.Target != "" {
		kids = append(kids, entry{"autoscaling", dir(true, entry{"target-lifecycle-state", leaf(md.Target)})})
	}
	if md.Spot != nil {
		action := md.Spot.Action
		if action == "" {
			action = "terminate"
		}
		at := md.Spot.Time.UTC().Format(awsTime)
		kids = append(kids, entry{"spot", dir(true,
			entry{"instance-action", leaf(fmt.Sprintf(`{"action": %s, "time": %s}`, jsonString(action), jsonString(at)))},
			entry{"termination-time", leaf(at)},
		)})
	}
	if md.TagsEnabled {
		kids = append(kids, entry{"tags", dir(true, entry{"instance", tags(md.Tags)})})
	}
	sortEntries(kids)
	return dir(true, kids...)
}

func sortEntries(es []entry) {
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
}

// tags is the tags/instance directory: the keys IMDS can show, sorted.
func tags(all map[string]string) *node {
	d := dir(true)
	for k, v := range all {
		if visibleTagKey(k) {
			d.kids = append(d.kids, entry{k, leaf(v)})
		}
	}
	sortEntries(d.kids)
	return d
}

// visibleTagKey reports whether IMDS shows a tag key: ASCII letters,
// digits and + - = . , _ : @ only, and not ".", ".." or "_index".
func visibleTagKey(k string) bool {
	switch k {
	case "", ".", "..", "_index":
		return false
	}
	for _, c := range []byte(k) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("+-=.,_:@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// iam is the iam directory: info and the role's credentials. An instance
// without a role gets DefaultRoleName.
func iam(md world.Metadata, now time.Time) *node {
	role := md.RoleName
	if role == "" {
		role = DefaultRoleName
	}
	now = now.UTC()
	seed := md.Account + "/" + md.InstanceID + "/" + role
	info := struct {
		Code               string
		LastUpdated        string
		InstanceProfileArn string
		InstanceProfileID  string `json:"InstanceProfileId"`
	}{
		Code:               "Success",
		LastUpdated:        now.Format(awsTime),
		InstanceProfileArn: "arn:" + partition(md.Region) + ":iam::" + md.Account + ":instance-profile/" + role,
		InstanceProfileID:  "AIPA" + dummy(seed+"/profile", 17),
	}
	creds := struct {
		Code            string
		LastUpdated     string
		Type            string
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      string
	}{
		Code:            "Success",
		LastUpdated:     now.Format(awsTime),
		Type:            "AWS-HMAC",
		AccessKeyID:     "ASIA" + dummy(seed+"/key", 16),
		SecretAccessKey: dummySecret(seed+"/secret", 40),
		Token:           "IQoJb3JpZ2luX2VjE" + dummySecret(seed+"/token", 64),
		Expiration:      now.Add(credentialLifetime).Format(awsTime),
	}
	return dir(true,
		entry{"info", jsonLeaf(info)},
		entry{"security-credentials", dir(true, entry{role, jsonLeaf(creds)})},
	)
}

// identityDocument is dynamic/instance-identity/document, with AWS's keys in
// AWS's order.
func identityDocument(md world.Metadata) *node {
	doc := struct {
		AccountID               string   `json:"accountId"`
		Architecture            string   `json:"architecture"`
		AvailabilityZone        string   `json:"availabilityZone"`
		BillingProducts         []string `json:"billingProducts"`
		DevpayProductCodes      []string `json:"devpayProductCodes"`
		MarketplaceProductCodes []string `json:"marketplaceProductCodes"`
		ImageID                 string   `json:"imageId"`
		InstanceID              string   `json:"instanceId"`
		InstanceType            string   `json:"instanceType"`
		KernelID                *string  `json:"kernelId"`
		PendingTime             string   `json:"pendingTime"`
		PrivateIP               string   `json:"privateIp"`
		RamdiskID               *string  `json:"ramdiskId"`
		Region                  string   `json:"region"`
		Version                 string   `json:"version"`
	}{
		AccountID:        md.Account,
		Architecture:     architecture(md.InstanceType),
		AvailabilityZone: md.AZ,
		ImageID:          md.ImageID,
		InstanceID:       md.InstanceID,
		InstanceType:     md.InstanceType,
		PendingTime:      md.LaunchTime.UTC().Format(awsTime),
		PrivateIP:        md.PrivateIP,
		Region:           md.Region,
		Version:          "2017-09-30",
	}
	return jsonLeaf(doc)
}

func jsonLeaf(v any) *node {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only fixed struct shapes of strings reach here.
		b = []byte("{}")
	}
	return &node{body: b, ctype: "text/plain"}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// dummy returns n upper-case base32 characters derived from seed, for
// stable, well-formed fake identifiers.
func dummy(seed string, n int) string {
	sum := sha256.Sum256([]byte(seed))
	return base32.StdEncoding.EncodeToString(sum[:])[:n]
}

// dummySecret returns n base64 characters derived from seed (n ≤ 86).
func dummySecret(seed string, n int) string {
	a := sha256.Sum256([]byte(seed))
	b := sha256.Sum256(a[:])
	return base64.RawStdEncoding.EncodeToString(append(a[:], b[:]...))[:n]
}

// hostname is EC2's private DNS name for ip: ip-127-0-0-5.ec2.internal in
// us-east-1, ip-127-0-0-5.<region>.compute.internal elsewhere.
func hostname(ip, region string) string {
	domain := region + ".compute.internal"
	if region == "us-east-1" {
		domain = "ec2.internal"
	}
	return "ip-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip) + "." + domain
}

// macAddress is 02:00:00 followed by the low three bytes of an IPv4
// address; "" for anything else.
func macAddress(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return ""
	}
	b := a.As4()
	return fmt.Sprintf("02:00:00:%02x:%02x:%02x", b[1], b[2], b[3])
}

// partition is the ARN partition of a region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// architecture guesses an instance type's architecture as EC2 names them:
// a Graviton family has a "g" after its generation digit (m6g, c7gn, t4g,
// x2gd) and is arm64; everything else is x86_64.
func architecture(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	i := strings.IndexAny(family, "0123456789")
	if i < 0 {
		return "x86_64"
	}
	suffix := strings.TrimLeft(family[i:], "0123456789")
	if strings.Contains(suffix, "g") {
		return "arm64"
	}
	return "x86_64"
}

// zoneID derives an availability zone ID from a region and zone name, in
// AWS's format. The region's short code is its first part, the initials of
// each middle part (north n, south s, east e, west w, central c,
// northeast ne, southeast se, northwest nw, southwest sw; any other word its
// first letter, as "gov" → g), then its number: us-east-1 → use1,
// ap-northeast-1 → apne1, us-gov-west-1 → usgw1. The zone's letter gives the
// number: a → az1, b → az2, and so on. (AWS maps letters to IDs differently
// per account; the sandbox uses this fixed mapping.) It returns "" when the
// zone is not the region followed by one lower-case letter.
func zoneID(region, az string) string {
	letter, ok := strings.CutPrefix(az, region)
	if !ok || len(letter) != 1 || letter[0] < 'a' || letter[0] > 'z' {
		return ""
	}
	parts := strings.Split(region, "-")
	if len(parts) < 3 || parts[0] == "" || parts[len(parts)-1] == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1 : len(parts)-1] {
		switch p {
		case "north", "south", "east", "west", "central":
			b.WriteByte(p[0])
		case "northeast", "southeast", "northwest", "southwest":
			b.WriteByte(p[0])
			b.WriteByte(p[5])
		case "":
			return ""
		default:
			b.WriteByte(p[0])
		}
	}
	b.WriteString(parts[len(parts)-1])
	return fmt.Sprintf("%s-az%d", b.String(), letter[0]-'a'+1)
}

package pattern_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/pattern"
)

func snsStr(v string) pattern.Attribute {
	return pattern.Attribute{DataType: "String", StringValue: v}
}
func snsNum(v string) pattern.Attribute {
	return pattern.Attribute{DataType: "Number", StringValue: v}
}

// snsLifecycleBody is a terminate lifecycle action message (§8.1).
const snsLifecycleBody = `{"Origin":"AutoScalingGroup","LifecycleHookName":"drain","Destination":"EC2","AccountId":"123456789012","RequestId":"d595a0a3-4e05-12de-8512-2de8e15153bc","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","AutoScalingGroupName":"my-asg","Service":"AWS Auto Scaling","Time":"2019-01-07T15:00:10.031Z","EC2InstanceId":"i-080229cc245f8f968","LifecycleActionToken":"71514b9d-6a40-4b26-8523-05e7ee35fa40"}`

func TestSNSFilterPolicyMatches(t *testing.T) {
	attrs := map[string]pattern.Attribute{
		"store":    snsStr("example_corp"),
		"event":    snsStr("order_placed"),
		"price":    snsNum("210.75"),
		"count":    snsNum("3"),
		"customer": snsStr("Alice"),
		"ip":       snsStr("10.0.3.7"),
		"tags":     {DataType: "String.Array", StringValue: `["red","blue",7,true]`},
		"blob":     {DataType: "Binary", BinaryValue: []byte{1, 2}},
		"custom":   {DataType: "String.custom", StringValue: "x"},
	}
	body := `{"store":"example_corp","order":{"id":42,"status":"placed","lines":[{"sku":"A-1"},{"sku":"B-2"}]},` +
		`"flags":["new","gift"],"total":99.5,"paid":true,"coupon":null,"ip":"192.168.1.20"}`
	type tc struct {
		name   string
		policy string
		want   bool
	}
	attrCases := []tc{
		{"empty policy matches everything", ``, true},
		{"empty object matches everything", `{}`, true},
		{"exact string", `{"store":["example_corp"]}`, true},
		{"exact string, other value", `{"store":["other"]}`, false},
		{"OR within a key", `{"store":["other","example_corp"]}`, true},
		{"AND across keys", `{"store":["example_corp"],"event":["order_cancelled"]}`, false},
		{"AND across keys, both match", `{"store":["example_corp"],"event":["order_placed"]}`, true},
		{"missing key never matches a value", `{"nothere":["x"]}`, false},
		{"exact number matches a Number attribute", `{"price":[210.75]}`, true},
		{"exact number is numeric", `{"count":[3.0]}`, true},
		{"exact number does not match a String attribute", `{"store":[1]}`, false},
		{"string does not match a Number attribute", `{"count":["3"]}`, false},
		{"prefix", `{"event":[{"prefix":"order_"}]}`, true},
		{"prefix, no match", `{"event":[{"prefix":"refund_"}]}`, false},
		{"suffix", `{"event":[{"suffix":"_placed"}]}`, true},
		{"suffix, no match", `{"event":[{"suffix":"_shipped"}]}`, false},
		{"equals-ignore-case", `{"customer":[{"equals-ignore-case":"aLiCe"}]}`, true},
		{"equals-ignore-case, no match", `{"customer":[{"equals-ignore-case":"bob"}]}`, false},
		{"anything-but list", `{"store":[{"anything-but":["a","b"]}]}`, true},
		{"anything-but list containing the value", `{"store":[{"anything-but":["example_corp"]}]}`, false},
		{"anything-but single value", `{"event":[{"anything-but":"order_cancelled"}]}`, true},
		{"anything-but number", `{"count":[{"anything-but":3}]}`, false},
		{"anything-but prefix", `{"event":[{"anything-but":{"prefix":"order"}}]}`, false},
		{"anything-but prefix, other", `{"event":[{"anything-but":{"prefix":"refund"}}]}`, true},
		{"anything-but suffix", `{"event":[{"anything-but":{"suffix":"placed"}}]}`, false},
		{"anything-but needs the key", `{"nothere":[{"anything-but":["x"]}]}`, false},
		{"numeric range", `{"price":[{"numeric":[">",0,"<=",300]}]}`, true},
		{"numeric range, outside", `{"price":[{"numeric":[">",0,"<",100]}]}`, false},
		{"numeric equals", `{"count":[{"numeric":["=",3]}]}`, true},
		{"numeric >=", `{"count":[{"numeric":[">=",4]}]}`, false},
		{"numeric on a String attribute", `{"store":[{"numeric":[">",0]}]}`, false},
		{"exists true", `{"store":[{"exists":true}]}`, true},
		{"exists true, absent", `{"nothere":[{"exists":true}]}`, false},
		{"exists false, absent", `{"nothere":[{"exists":false}]}`, true},
		{"exists false, present", `{"store":[{"exists":false}]}`, false},
		{"binary attributes are ignored", `{"blob":[{"exists":true}]}`, false},
		{"custom string type", `{"custom":["x"]}`, true},
		{"cidr", `{"ip":[{"cidr":"10.0.0.0/16"}]}`, true},
		{"cidr, outside", `{"ip":[{"cidr":"10.1.0.0/16"}]}`, false},
		{"String.Array any element", `{"tags":["blue"]}`, true},
		{"String.Array number element", `{"tags":[7]}`, true},
		{"String.Array bool element", `{"tags":[true]}`, true},
		{"String.Array no element", `{"tags":["green"]}`, false},
		{"$or, one branch", `{"$or":[{"store":["nope"]},{"event":["order_placed"]}]}`, true},
		{"$or, no branch", `{"$or":[{"store":["nope"]},{"event":["nope"]}]}`, false},
		{"$or ANDed with a key", `{"customer":["Bob"],"$or":[{"store":["example_corp"]},{"event":["x"]}]}`, false},
	}
	for _, c := range attrCases {
		t.Run("attributes/"+c.name, func(t *testing.T) {
			got, err := pattern.MatchFilter(c.policy, pattern.ScopeMessageAttributes, attrs, body)
			if err != nil {
				t.Fatalf("MatchFilterPolicy(%s): %v", c.policy, err)
			}
			if got != c.want {
				t.Errorf("MatchFilterPolicy(%s) = %t, want %t", c.policy, got, c.want)
			}
		})
	}
	bodyCases := []tc{
		{"top-level string", `{"store":["example_corp"]}`, true},
		{"nested key", `{"order":{"status":["placed"]}}`, true},
		{"nested key, other value", `{"order":{"status":["shipped"]}}`, false},
		{"nested number", `{"order":{"id":[42]}}`, true},
		{"nested numeric range", `{"order":{"id":[{"numeric":[">",40,"<",50]}]}}`, true},
		{"array of objects", `{"order":{"lines":{"sku":["B-2"]}}}`, true},
		{"array of objects, prefix", `{"order":{"lines":{"sku":[{"prefix":"C-"}]}}}`, false},
		{"array of strings", `{"flags":["gift"]}`, true},
		{"number", `{"total":[{"numeric":["<",100]}]}`, true},
		{"bool", `{"paid":[true]}`, true},
		{"bool, other", `{"paid":[false]}`, false},
		{"null", `{"coupon":[null]}`, true},
		{"exists on a leaf", `{"order":{"status":[{"exists":true}]}}`, true},
		{"exists on an object is not a leaf", `{"order":[{"exists":true}]}`, false},
		{"exists false on a missing nested key", `{"order":{"refund":[{"exists":false}]}}`, true},
		{"exists false under a missing parent", `{"nothere":{"x":[{"exists":false}]}}`, true},
		{"cidr", `{"ip":[{"cidr":"192.168.0.0/16"}]}`, true},
		{"equals-ignore-case", `{"store":[{"equals-ignore-case":"EXAMPLE_CORP"}]}`, true},
		{"anything-but", `{"order":{"status":[{"anything-but":["placed","shipped"]}]}}`, false},
		{"suffix", `{"store":[{"suffix":"_corp"}]}`, true},
		{"$or nested", `{"order":{"$or":[{"status":["x"]},{"id":[42]}]}}`, true},
		{"attributes are not the body", `{"event":["order_placed"]}`, false},
	}
	for _, c := range bodyCases {
		t.Run("body/"+c.name, func(t *testing.T) {
			got, err := pattern.MatchFilter(c.policy, pattern.ScopeMessageBody, attrs, body)
			if err != nil {
				t.Fatalf("MatchFilterPolicy(%s): %v", c.policy, err)
			}
			if got != c.want {
				t.Errorf("MatchFilterPolicy(%s) = %t, want %t", c.policy, got, c.want)
			}
		})
	}
	t.Run("body scope needs a JSON object", func(t *testing.T) {
		for _, b := range []string{"not json", `["store"]`, `"example_corp"`, ``} {
			if got, err := pattern.MatchFilter(`{"store":[{"exists":false}]}`, pattern.ScopeMessageBody, nil, b); got || err != nil {
				t.Errorf("body %q: %t, %v; want no match", b, got, err)
			}
		}
	})
}

func TestSNSFilterPolicyLifecycleInstance(t *testing.T) {
	policy := `{"EC2InstanceId":["i-080229cc245f8f968"]}`
	if got, err := pattern.MatchFilter(policy, pattern.ScopeMessageBody, nil, snsLifecycleBody); !got || err != nil {
		t.Errorf("own instance: %t, %v; want a match", got, err)
	}
	other := strings.ReplaceAll(snsLifecycleBody, "i-080229cc245f8f968", "i-0194708ef7e24dcc7")
	if got, err := pattern.MatchFilter(policy, pattern.ScopeMessageBody, nil, other); got || err != nil {
		t.Errorf("other instance: %t, %v; want no match", got, err)
	}
	test := `{"AccountId":"123456789012","RequestId":"b36d6757","AutoScalingGroupName":"my-asg","Service":"AWS Auto Scaling","Event":"autoscaling:TEST_NOTIFICATION","Time":"2018-05-14T22:39:45.555Z"}`
	if got, err := pattern.MatchFilter(policy, pattern.ScopeMessageBody, nil, test); got || err != nil {
		t.Errorf("test notification: %t, %v; want no match", got, err)
	}
	// The same policy in the attribute scope looks at attributes, which
	// lifecycle messages do not have.
	if got, err := pattern.MatchFilter(policy, pattern.ScopeMessageAttributes, nil, snsLifecycleBody); got || err != nil {
		t.Errorf("attribute scope: %t, %v; want no match", got, err)
	}
}

func TestSNSFilterPolicyValidation(t *testing.T) {
	cases := []struct {
		name, policy, scope, want string
	}{
		{"not JSON", `{"a":`, "", "Invalid parameter: FilterPolicy: failed to parse JSON."},
		{"not an object", `["a"]`, "", "Invalid parameter: FilterPolicy: Filter policy must be a JSON object"},
		{"scalar value", `{"a":"b"}`, "", `Invalid parameter: FilterPolicy: "a" must be an object or an array`},
		{"nested in the attribute scope", `{"a":{"b":["c"]}}`, "", "Invalid parameter: FilterPolicy: Filter policy scope MessageAttributes does not support nested filter policy"},
		{"empty array", `{"a":[]}`, "", "Invalid parameter: FilterPolicy: Empty arrays are not allowed"},
		{"unknown operator", `{"a":[{"prefx":"b"}]}`, "", "Invalid parameter: FilterPolicy: Unrecognized match type prefx"},
		{"two operators", `{"a":[{"prefix":"b","suffix":"c"}]}`, "", "Invalid parameter: FilterPolicy: Only one key allowed in match expression"},
		{"nested array value", `{"a":[["b"]]}`, "", "Invalid parameter: FilterPolicy: Match value must be String, number, true, false, or null"},
		{"prefix not a string", `{"a":[{"prefix":1}]}`, "", "Invalid parameter: FilterPolicy: Value of prefix must be a string"},
		{"exists not a bool", `{"a":[{"exists":"yes"}]}`, "", "Invalid parameter: FilterPolicy: exists match pattern must be either true or false."},
		{"numeric operator", `{"a":[{"numeric":["!=",1]}]}`, "", "Invalid parameter: FilterPolicy: Unrecognized numeric range operator: !="},
		{"numeric value", `{"a":[{"numeric":[">","1"]}]}`, "", "Invalid parameter: FilterPolicy: Value of > must be numeric"},
		{"numeric range order", `{"a":[{"numeric":[">",5,"<",1]}]}`, "", "Invalid parameter: FilterPolicy: Bottom must be less than top"},
		{"numeric upper first", `{"a":[{"numeric":["<",5,">",1]}]}`, "", "Invalid parameter: FilterPolicy: Too many elements in numeric expression"},
		{"numeric too many", `{"a":[{"numeric":[">",1,"<",5,"<",6]}]}`, "", "Invalid parameter: FilterPolicy: Too many elements in numeric expression"},
		{"number out of range", `{"a":[1000000000]}`, "", "Invalid parameter: FilterPolicy: Numeric value must be a number between -1000000000 and 1000000000 (exclusive), got 1000000000"},
		{"cidr", `{"a":[{"cidr":"10.0.0.0"}]}`, "", "Invalid parameter: FilterPolicy: Malformed CIDR, one '/' required: 10.0.0.0"},
		{"anything-but empty", `{"a":[{"anything-but":[]}]}`, "", "Invalid parameter: FilterPolicy: Empty arrays are not allowed"},
		{"too many keys", `{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}`, "", "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys"},
		{"too complex", `{"a":[1,2,3,4,5,6,7,8,9,10,11,12,13],"b":[1,2,3,4,5,6,7,8,9,10,11,12]}`, "", "Invalid parameter: FilterPolicy: Filter policy is too complex"},
		{"bad $or", `{"$or":{"a":["b"]}}`, "", `Invalid parameter: FilterPolicy: "$or" must be an array of objects`},
		{"bad scope", `{"a":["b"]}`, "Body", "Invalid parameter: FilterPolicyScope: Invalid value [Body]. Please use either MessageBody or MessageAttributes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := pattern.ValidateFilter(c.policy, c.scope)
			var fe *pattern.FilterPolicyError
			if !errors.As(err, &fe) || fe.Message != c.want {
				t.Errorf("ValidateFilterPolicy(%s) = %v, want %q", c.policy, err, c.want)
			}
		})
	}
	for _, ok := range []string{
		`{"a":{"b":{"c":["d"]}}}`,
		`{"a":[{"numeric":[">=",-5.5,"<=",999999999.99999]}]}`,
		`{"a":[{"anything-but":{"suffix":"x"}}, {"cidr":"2001:db8::/32"}, null, false]}`,
	} {
		if err := pattern.ValidateFilter(ok, pattern.ScopeMessageBody); err != nil {
			t.Errorf("ValidateFilterPolicy(%s) = %v, want nil", ok, err)
		}
	}
}

func FuzzFilterPolicy(f *testing.F) {
	seeds := [][2]string{
		{`{"EC2InstanceId":["i-080229cc245f8f968"]}`, snsLifecycleBody},
		{`{"a":{"b":[{"prefix":"x"},{"numeric":[">",1,"<=",5]}]}}`, `{"a":{"b":[3,"xy"]}}`},
		{`{"$or":[{"a":[{"exists":false}]},{"b":[{"anything-but":{"prefix":"q"}}]}]}`, `{"b":"r"}`},
		{`{"ip":[{"cidr":"10.0.0.0/8"}],"s":[{"equals-ignore-case":"A"},{"suffix":"z"}]}`, `{"ip":"10.1.2.3","s":"a"}`},
		{`{"a":[null,true,1e-5]}`, `[1,2]`},
		{`not json`, `{}`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, policy, body string, bodyScope bool) {
		scope := pattern.ScopeMessageAttributes
		if bodyScope {
			scope = pattern.ScopeMessageBody
		}
		// Attributes derived from the body, so both scopes see the input.
		attrs := map[string]pattern.Attribute{"a": snsStr(body), "b": snsNum("1.5"), "tags": {DataType: "String.Array", StringValue: body}}
		err := pattern.ValidateFilter(policy, scope)
		got, merr := pattern.MatchFilter(policy, scope, attrs, body)
		if (err == nil) != (merr == nil) {
			t.Fatalf("validate says %v but match says %v", err, merr)
		}
		if err != nil {
			var fe *pattern.FilterPolicyError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Message, "Invalid parameter: FilterPolicy") {
				t.Fatalf("error %v is not an InvalidParameter FilterPolicy message", err)
			}
			return
		}
		again, _ := pattern.MatchFilter(policy, scope, attrs, body)
		if again != got {
			t.Fatalf("policy %s on %s matched %t then %t", policy, body, got, again)
		}
	})
}

package tables_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
)

// base is the item the expression tests start from.
const base = `{"pk":{"S":"lease"},"holder":{"S":"i-1"},"epoch":{"N":"42"},"expires_ms":{"N":"1735689615000"},
 "tags":{"SS":["a","b"]},"nums":{"NS":["1","2"]},"lst":{"L":[{"S":"x"},{"N":"7"},{"M":{"deep":{"S":"d"}}}]},
 "mp":{"M":{"nested":{"M":{"v":{"N":"1.50"}}},"flag":{"BOOL":true}}},"nothing":{"NULL":true},"bin":{"B":"AQID"},
 "name_":{"S":"héllo"}}`

func TestDynamoDBConditionExpressions(t *testing.T) {
	for _, tc := range []struct {
		cond   string
		values string // JSON of ExpressionAttributeValues, or ""
		names  map[string]string
		want   bool
	}{
		{"attribute_exists(pk)", "", nil, true},
		{"attribute_not_exists(#pk) OR #exp < :now", `{":now":{"N":"1735689600000"}}`, map[string]string{"#pk": "pk", "#exp": "expires_ms"}, false},
		{"attribute_not_exists(#pk) OR #exp < :now", `{":now":{"N":"1735689615001"}}`, map[string]string{"#pk": "pk", "#exp": "expires_ms"}, true},
		{"holder = :me AND epoch = :e", `{":me":{"S":"i-1"},":e":{"N":"42.000"}}`, nil, true},
		{"holder <> :me", `{":me":{"S":"i-1"}}`, nil, false},
		{"absent <> :me", `{":me":{"S":"i-1"}}`, nil, true},
		{"absent = :me", `{":me":{"S":"i-1"}}`, nil, false},
		{"absent < :n", `{":n":{"N":"1"}}`, nil, false},
		{"holder < :n", `{":n":{"N":"1"}}`, nil, false}, // mismatched types: false, no error
		{"epoch > :a", `{":a":{"N":"9.99e1"}}`, nil, false},
		{"epoch >= :a", `{":a":{"N":"42"}}`, nil, true},
		{"epoch <= :a", `{":a":{"N":"-1"}}`, nil, false},
		{"epoch BETWEEN :a AND :b", `{":a":{"N":"40"},":b":{"N":"42"}}`, nil, true},
		{"holder BETWEEN :a AND :b", `{":a":{"S":"i-0"},":b":{"S":"i-2"}}`, nil, true},
		{"epoch IN (:a, :b, :c)", `{":a":{"N":"1"},":b":{"S":"42"},":c":{"N":"4.2E1"}}`, nil, true},
		{"epoch IN (:a)", `{":a":{"N":"1"}}`, nil, false},
		{"NOT attribute_exists(gone)", "", nil, true},
		{"NOT (attribute_exists(pk) AND holder = :x)", `{":x":{"S":"i-1"}}`, nil, false},
		{"attribute_exists(gone) OR attribute_exists(pk) AND attribute_exists(gone)", "", nil, false}, // AND binds tighter
		{"(attribute_exists(gone) OR attribute_exists(pk)) AND attribute_exists(holder)", "", nil, true},
		{"attribute_type(epoch, :t)", `{":t":{"S":"N"}}`, nil, true},
		{"attribute_type(tags, :t)", `{":t":{"S":"NS"}}`, nil, false},
		{"attribute_type(nothing, :t)", `{":t":{"S":"NULL"}}`, nil, true},
		{"begins_with(holder, :p)", `{":p":{"S":"i-"}}`, nil, true},
		{"begins_with(bin, :p)", `{":p":{"B":"AQ=="}}`, nil, true},
		{"begins_with(epoch, :p)", `{":p":{"S":"4"}}`, nil, false},
		{"contains(tags, :v)", `{":v":{"S":"b"}}`, nil, true},
		{"contains(nums, :v)", `{":v":{"N":"2.0"}}`, nil, true},
		{"contains(holder, :v)", `{":v":{"S":"-"}}`, nil, true},
		{"contains(lst, :v)", `{":v":{"N":"7"}}`, nil, true},
		{"contains(lst, :v)", `{":v":{"S":"7"}}`, nil, false},
		{"size(tags) = :two", `{":two":{"N":"2"}}`, nil, true},
		{"size(name_) = :n", `{":n":{"N":"5"}}`, nil, true},
		{"size(lst) > :n", `{":n":{"N":"2"}}`, nil, true},
		{"size(epoch) > :n", `{":n":{"N":"0"}}`, nil, false},
		{"lst[2].deep = :d", `{":d":{"S":"d"}}`, nil, true},
		{"lst[9] = :d", `{":d":{"S":"d"}}`, nil, false},
		{"#m.nested.v = :v", `{":v":{"N":"1.5"}}`, map[string]string{"#m": "mp"}, true},
		{"#m.#f = :t", `{":t":{"BOOL":true}}`, map[string]string{"#m": "mp", "#f": "flag"}, true},
		{"tags = :s", `{":s":{"SS":["b","a"]}}`, nil, true},
		{"mp = :m", `{":m":{"M":{"flag":{"BOOL":true},"nested":{"M":{"v":{"N":"1.5"}}}}}}`, nil, true},
		{"holder = :me and epoch = :e", `{":me":{"S":"i-1"},":e":{"N":"42"}}`, nil, true}, // keywords in any case
	} {
		t.Run(tc.cond, func(t *testing.T) {
			o, _, _ := newOwner(t)
			item := av(t, base)
			if _, err := o.PutItem(tables.PutItemInput{Table: "leases", Item: item}); err != nil {
				t.Fatal(err)
			}
			x := tables.Expressions{Names: tc.names}
			if tc.values != "" {
				x.Values = av(t, tc.values)
			}
			_, err := o.PutItem(tables.PutItemInput{Table: "leases", Item: item, Condition: ptr(tc.cond), Expressions: x})
			var e *tables.Error
			switch {
			case err == nil && !tc.want:
				t.Errorf("condition held, want it to fail")
			case err != nil && (!errors.As(err, &e) || e.Code != tables.CodeConditionalFailed):
				t.Fatalf("error %v, want a condition result", err)
			case err != nil && tc.want:
				t.Errorf("condition failed, want it to hold")
			}
		})
	}
}

func TestDynamoDBExpressionErrors(t *testing.T) {
	one := `{":v":{"N":"1"}}`
	for _, tc := range []struct {
		name      string
		cond, upd string
		values    string
		names     map[string]string
		want      string
	}{
		{"unused value", "attribute_exists(pk)", "", `{":x":{"S":"1"}}`, nil,
			"1 validation error detected: Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"},
		{"unused name", "attribute_exists(pk)", "", "", map[string]string{"#a": "a", "#b": "b"},
			"1 validation error detected: Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"},
		{"undefined value", "epoch = :x", "", "", nil,
			"Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :x"},
		{"undefined name", "#e = :v", "", one, nil,
			"Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #e"},
		{"undefined in update", "", "SET a = :nope", "", nil,
			"Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :nope"},
		{"syntax at the end", "epoch = ", "", "", nil,
			`Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "= "`},
		{"syntax in the middle", "epoch = = :v", "", one, nil,
			`Invalid ConditionExpression: Syntax error; token: "=", near: "= = :v"`},
		{"syntax comes before undefined", "#x = :v AND", "", "", nil,
			`Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "AND"`},
		{"bad character", "epoch $ :v", "", one, nil,
			`Invalid ConditionExpression: Syntax error; token: "$", near: "epoch $ :v"`},
		{"empty condition", "", "", "", nil, "Invalid ConditionExpression: The expression can not be empty;"},
		{"reserved word", "status = :v", "", one, nil,
			"Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"},
		{"unknown function", "exists(pk)", "", "", nil, "Invalid ConditionExpression: Invalid function name; function: exists"},
		{"wrong arity", "begins_with(pk)", "", "", nil,
			"Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1"},
		{"function as operand", "attribute_exists(pk) = :v", "", one, nil,
			"Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists"},
		{"function needs a path", "attribute_exists(:v)", "", one, nil,
			"Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"},
		{"bad attribute type", "attribute_type(pk, :t)", "", `{":t":{"S":"STRING"}}`, nil,
			"Invalid ConditionExpression: Invalid attribute type name found; type: STRING, valid types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }"},
		{"begins_with a number", "begins_with(pk, :v)", "", one, nil,
			"Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"},
		{"ordering a bool", "epoch < :b", "", `{":b":{"BOOL":true}}`, nil,
			"Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: BOOL"},
		{"between reversed", "epoch BETWEEN :hi AND :lo", "", `{":hi":{"N":"5"},":lo":{"N":"1"}}`, nil,
			"Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}"},
		{"update function in a condition", "if_not_exists(a, :v) = :v", "", one, nil,
			"Invalid ConditionExpression: The function is not allowed in a condition expression; function: if_not_exists"},
		{"size in an update", "", "SET a = size(b)", "", nil,
			"Invalid UpdateExpression: The function is not allowed in an update expression; function: size"},
		{"clause twice", "", "SET a = :v SET b = :v", one, nil,
			`1 validation error detected: Invalid UpdateExpression: The "SET" section can only be used once in an update expression;`},
		{"overlapping paths", "", "SET a = :v REMOVE a.b", one, nil,
			"1 validation error detected: Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"},
		{"update syntax", "", "SET a = :v,", one, nil, `Invalid UpdateExpression: Syntax error; token: "<EOF>", near: ","`},
		{"update keyword as name", "", "SET a = :v REMOVE", one, nil, `Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "REMOVE"`},
		{"ADD a string", "", "ADD a :s", `{":s":{"S":"x"}}`, nil,
			"Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"},
		{"DELETE a number", "", "DELETE a :v", one, nil,
			"Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND"},
		{"arithmetic on a string value", "", "SET a = a + :s", `{":s":{"S":"x"}}`, nil,
			"Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"},
		{"update the key", "", "SET pk = :v", one, nil,
			"One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"},
		{"arithmetic on a absent attribute", "", "SET a = gone + :v", one, nil,
			"The provided expression refers to an attribute that does not exist in the item"},
		{"arithmetic on a string attribute", "", "SET a = holder + :v", one, nil,
			"Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"},
		{"list_append on a set", "", "SET a = list_append(tags, :l)", `{":l":{"L":[]}}`, nil,
			"Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: SS"},
		{"ADD to a string attribute", "", "ADD holder :v", one, nil, "An operand in the update expression has an incorrect data type"},
		{"SET under a missing map", "", "SET gone.x = :v", one, nil, "The document path provided in the update expression is invalid for update"},
		{"empty value map", "attribute_exists(pk)", "", `{}`, nil, "ExpressionAttributeValues must not be empty"},
		{"bad value key", "attribute_exists(pk)", "", `{"v":{"N":"1"}}`, nil, `ExpressionAttributeValues contains invalid key: Syntax error; key: "v"`},
		{"bad number", "epoch = :v", "", `{":v":{"N":"1x"}}`, nil,
			"ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: 1x for key :v"},
		{"too many digits", "epoch = :v", "", `{":v":{"N":"123456789012345678901234567890123456789"}}`, nil,
			"ExpressionAttributeValues contains invalid value: Attempting to store more than 38 significant digits in a Number for key :v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _, _ := newOwner(t)
			if _, err := o.PutItem(tables.PutItemInput{Table: "leases", Item: av(t, base)}); err != nil {
				t.Fatal(err)
			}
			x := tables.Expressions{Names: tc.names}
			if tc.values != "" {
				x.Values = av(t, tc.values)
			}
			in := tables.UpdateItemInput{Table: "leases", Key: av(t, `{"pk":{"S":"lease"}}`), Expressions: x}
			if tc.cond != "" || tc.upd == "" {
				in.Condition = ptr(tc.cond)
			}
			if tc.upd != "" {
				in.Update = ptr(tc.upd)
			}
			_, err := o.UpdateItem(in)
			wantErr(t, err, tables.CodeValidation, tc.want)
		})
	}
}

func TestDynamoDBUpdateExpressions(t *testing.T) {
	for _, tc := range []struct {
		upd    string
		values string
		want   string // the attributes that change, in DynamoDB JSON; "-x" removes x
	}{
		{"SET holder = :me, expires_ms = :e ADD epoch :one", `{":me":{"S":"i-2"},":e":{"N":"1"},":one":{"N":"1"}}`,
			`{"holder":{"S":"i-2"},"expires_ms":{"N":"1"},"epoch":{"N":"43"}}`},
		{"SET epoch = epoch - :d", `{":d":{"N":"0.5"}}`, `{"epoch":{"N":"41.5"}}`},
		{"SET fresh = if_not_exists(fresh, :z) + :one", `{":z":{"N":"0"},":one":{"N":"1"}}`, `{"fresh":{"N":"1"}}`},
		{"SET epoch = if_not_exists(epoch, :z)", `{":z":{"N":"0"}}`, `{}`},
		{"SET lst = list_append(lst, :l)", `{":l":{"L":[{"S":"y"}]}}`,
			`{"lst":{"L":[{"S":"x"},{"N":"7"},{"M":{"deep":{"S":"d"}}},{"S":"y"}]}}`},
		{"SET lst = list_append(:l, lst)", `{":l":{"L":[{"S":"w"}]}}`,
			`{"lst":{"L":[{"S":"w"},{"S":"x"},{"N":"7"},{"M":{"deep":{"S":"d"}}}]}}`},
		{"SET lst[1] = :v, lst[10] = :w", `{":v":{"N":"8"},":w":{"S":"end"}}`,
			`{"lst":{"L":[{"S":"x"},{"N":"8"},{"M":{"deep":{"S":"d"}}},{"S":"end"}]}}`},
		{"REMOVE lst[0], lst[2]", ``, `{"lst":{"L":[{"N":"7"}]}}`},
		{"SET mp.nested.w = :v REMOVE mp.flag", `{":v":{"S":"new"}}`, `{"mp":{"M":{"nested":{"M":{"v":{"N":"1.5"},"w":{"S":"new"}}}}}}`},
		{"REMOVE holder, gone", ``, `{"-holder":{"NULL":true}}`},
		{"ADD tags :t, nums :n", `{":t":{"SS":["c","a"]},":n":{"NS":["3"]}}`, `{"tags":{"SS":["a","b","c"]},"nums":{"NS":["1","2","3"]}}`},
		{"ADD newset :t", `{":t":{"SS":["z"]}}`, `{"newset":{"SS":["z"]}}`},
		{"DELETE tags :t", `{":t":{"SS":["a","q"]}}`, `{"tags":{"SS":["b"]}}`},
		{"DELETE tags :t", `{":t":{"SS":["a","b"]}}`, `{"-tags":{"NULL":true}}`},
		{"DELETE gone :t", `{":t":{"SS":["a"]}}`, `{}`},
		{"ADD epoch :big", `{":big":{"N":"99999999999999999999999999999999999958"}}`, `{"epoch":{"N":"100000000000000000000000000000000000000"}}`},
		{"set #a = :v remove nothing", `{":v":{"BOOL":false}}`, `{"alias":{"BOOL":false},"-nothing":{"NULL":true}}`},
	} {
		t.Run(tc.upd, func(t *testing.T) {
			o, _, _ := newOwner(t)
			if _, err := o.PutItem(tables.PutItemInput{Table: "leases", Item: av(t, base)}); err != nil {
				t.Fatal(err)
			}
			in := tables.UpdateItemInput{Table: "leases", Key: av(t, `{"pk":{"S":"lease"}}`), Update: ptr(tc.upd), ReturnValues: tables.ReturnAllNew}
			if tc.values != "" {
				in.Values = av(t, tc.values)
			}
			if strings.Contains(tc.upd, "#a") {
				in.Names = map[string]string{"#a": "alias"}
			}
			out, err := o.UpdateItem(in)
			if err != nil {
				t.Fatal(err)
			}
			want := av(t, base)
			for k, v := range av(t, tc.want) {
				if name, ok := strings.CutPrefix(k, "-"); ok {
					delete(want, name)
				} else {
					want[k] = v
				}
			}
			for _, v := range []tables.Value{want["epoch"], want["mp"]} {
				_ = v
			}
			normalized, _ := tables.Normalize(tables.M(want))
			if !sameItem(out.Attributes, normalized.M) {
				t.Errorf("item after update:\n%v\nwant\n%v", out.Attributes, normalized.M)
			}
		})
	}
}

func TestDynamoDBReturnValues(t *testing.T) {
	o, _, _ := newOwner(t)
	key := av(t, `{"pk":{"S":"k"}}`)
	vals := av(t, `{":a":{"N":"1"},":b":{"S":"x"}}`)
	out, err := o.UpdateItem(tables.UpdateItemInput{Table: "leases", Key: key, Update: ptr("SET a = :a, b = :b"), Expressions: tables.Expressions{Values: vals}, ReturnValues: tables.ReturnUpdatedOld})
	if err != nil || out.Attributes != nil {
		t.Fatalf("UPDATED_OLD of a new item: %v %v, want nothing", out.Attributes, err)
	}
	out, err = o.UpdateItem(tables.UpdateItemInput{Table: "leases", Key: key, Update: ptr("SET a = a + :a REMOVE b"), Expressions: tables.Expressions{Values: av(t, `{":a":{"N":"1"}}`)}, ReturnValues: tables.ReturnUpdatedOld})
	if err != nil || !sameItem(out.Attributes, av(t, `{"a":{"N":"1"},"b":{"S":"x"}}`)) {
		t.Errorf("UPDATED_OLD %v %v", out.Attributes, err)
	}
	out, err = o.UpdateItem(tables.UpdateItemInput{Table: "leases", Key: key, Update: ptr("SET c = :a"), Expressions: tables.Expressions{Values: av(t, `{":a":{"N":"5"}}`)}, ReturnValues: tables.ReturnUpdatedNew})
	if err != nil || !sameItem(out.Attributes, av(t, `{"c":{"N":"5"}}`)) {
		t.Errorf("UPDATED_NEW %v %v", out.Attributes, err)
	}
	_, err = o.PutItem(tables.PutItemInput{Table: "leases", Item: key, ReturnValues: tables.ReturnAllNew})
	wantErr(t, err, tables.CodeValidation, "Return values set to invalid value")
	_, err = o.DeleteItem(tables.DeleteItemInput{Table: "leases", Key: key, ReturnValues: "EVERYTHING"})
	wantErr(t, err, tables.CodeValidation, "1 validation error detected: Value 'EVERYTHING' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]")
	// A failed condition returns the old item only when asked.
	_, err = o.DeleteItem(tables.DeleteItemInput{Table: "leases", Key: key, Condition: ptr("a = :b"), Expressions: tables.Expressions{Values: av(t, `{":b":{"N":"9"}}`)}, ReturnValuesOnConditionCheckFailure: tables.ReturnAllOld})
	var e *tables.Error
	if !errors.As(err, &e) || e.Code != tables.CodeConditionalFailed || !sameItem(e.Item, av(t, `{"pk":{"S":"k"},"a":{"N":"2"},"c":{"N":"5"}}`)) {
		t.Errorf("failed delete: %v with item %v", err, e)
	}
	_, err = o.DeleteItem(tables.DeleteItemInput{Table: "leases", Key: key, Condition: ptr("a = :b"), Expressions: tables.Expressions{Values: av(t, `{":b":{"N":"9"}}`)}})
	if !errors.As(err, &e) || e.Item != nil {
		t.Errorf("failed delete without ALL_OLD carries %v", e.Item)
	}
	out, err = o.DeleteItem(tables.DeleteItemInput{Table: "leases", Key: key, ReturnValues: tables.ReturnAllOld})
	if err != nil || out.Attributes["c"].Str != "5" {
		t.Errorf("delete ALL_OLD: %v %v", out.Attributes, err)
	}
}

func TestDynamoDBProjection(t *testing.T) {
	o, _, _ := newOwner(t)
	if _, err := o.PutItem(tables.PutItemInput{Table: "leases", Item: av(t, base)}); err != nil {
		t.Fatal(err)
	}
	it, _, err := o.GetItem(tables.GetItemInput{Table: "leases", Key: av(t, `{"pk":{"S":"lease"}}`), ConsistentRead: true,
		Projection: ptr("holder, #m.nested, lst[2].deep, lst[0], absent"), Names: map[string]string{"#m": "mp"}})
	if err != nil {
		t.Fatal(err)
	}
	want := av(t, `{"holder":{"S":"i-1"},"mp":{"M":{"nested":{"M":{"v":{"N":"1.5"}}}}},"lst":{"L":[{"S":"x"},{"M":{"deep":{"S":"d"}}}]}}`)
	if !sameItem(it, want) {
		t.Errorf("projected %v\nwant %v", it, want)
	}
	_, _, err = o.GetItem(tables.GetItemInput{Table: "leases", Key: av(t, `{"pk":{"S":"lease"}}`), Projection: ptr("a, a.b")})
	wantErr(t, err, tables.CodeValidation, "1 validation error detected: Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]")
	_, _, err = o.GetItem(tables.GetItemInput{Table: "leases", Key: av(t, `{"pk":{"S":"lease"}}`), Projection: ptr("a"), Names: map[string]string{"#n": "x"}})
	wantErr(t, err, tables.CodeValidation, "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}")
	_, _, err = o.GetItem(tables.GetItemInput{Table: "leases", Key: av(t, `{"pk":{"N":"1"}}`)})
	wantErr(t, err, tables.CodeValidation, "The provided key element does not match the schema")
	_, _, err = o.GetItem(tables.GetItemInput{Table: "leases", Key: av(t, `{"pk":{"S":""}}`)})
	wantErr(t, err, tables.CodeValidation, "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk")
}

// FuzzExpression feeds arbitrary update and condition expressions through
// the owner: any input must give a result or a ValidationException (or a
// failed condition), never a panic or another kind of error, and a
// successful update must leave a well-formed item.
func FuzzExpression(f *testing.F) {
	for _, s := range [][2]string{
		{"SET #h = :me, #exp = :newExp, #rvn = :newRvn ADD #epoch :one", "attribute_not_exists(#pk) OR #exp < :now OR (#h = :me AND #rvn = :oldRvn)"},
		{"SET a = if_not_exists(a, :one) + :one REMOVE b[0], c.d", "size(l) > :one AND begins_with(#h, :me)"},
		{"SET l = list_append(if_not_exists(l, :l), :l) DELETE s :ss", "contains(s, :me) AND attribute_type(a, :t) AND NOT a IN (:one, :now)"},
		{"ADD s :ss SET m.x[3].y = :me", "a BETWEEN :one AND :now"},
		{"SET a = a - :one", "(((a = :one)))"},
		{"REMOVE #h", "#exp <> :now"},
	} {
		f.Add(s[0], s[1])
	}
	clock := &fixedClock{}
	o := tables.New(tables.Config{}, clock, nil)
	if _, err := o.CreateTable(tables.TableSpec{Name: "fuzz", KeySchema: []tables.KeySchemaElement{{AttributeName: "pk", KeyType: "HASH"}},
		Attributes: []tables.AttributeDefinition{{AttributeName: "pk", AttributeType: "S"}}, BillingMode: tables.PayPerRequest}); err != nil {
		f.Fatal(err)
	}
	clock.advance(tables.DefaultCreateDelay)
	names := map[string]string{"#pk": "pk", "#h": "holder", "#exp": "expires_ms", "#rvn": "rvn", "#epoch": "epoch"}
	values := tables.Item{
		":me": tables.S("i-1"), ":newExp": tables.N("15"), ":newRvn": tables.S("r2"), ":oldRvn": tables.S("r1"),
		":one": tables.N("1"), ":now": tables.N("10"), ":l": tables.L(tables.S("x")), ":ss": tables.SS("a"), ":t": tables.S("N"),
	}
	key := tables.Item{"pk": tables.S("k")}
	f.Fuzz(func(t *testing.T, upd, cond string) {
		in := tables.UpdateItemInput{Table: "fuzz", Key: key, Update: &upd, Condition: &cond,
			Expressions: tables.Expressions{Names: names, Values: values}, ReturnValues: tables.ReturnAllNew}
		out, err := o.UpdateItem(in)
		if err != nil {
			var e *tables.Error
			if !errors.As(err, &e) || (e.Code != tables.CodeValidation && e.Code != tables.CodeConditionalFailed) || e.Message == "" {
				t.Fatalf("update %q if %q: %v", upd, cond, err)
			}
			return
		}
		if _, err := tables.Normalize(tables.M(out.Attributes)); err != nil {
			t.Fatalf("update %q left a malformed item %v: %v", upd, out.Attributes, err)
		}
		if out.Attributes["pk"].Str != "k" {
			t.Fatalf("update %q lost the key: %v", upd, out.Attributes)
		}
	})
}

package dynamodb

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
)

// epoch renders a time as awsJson does: seconds since the epoch.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64)), nil
}

type keySchemaElement struct {
	AttributeName *string `json:"AttributeName"`
	KeyType       *string `json:"KeyType"`
}

type attributeDefinition struct {
	AttributeName *string `json:"AttributeName"`
	AttributeType *string `json:"AttributeType"`
}

type throughputOut struct {
	NumberOfDecreasesToday int64 `json:"NumberOfDecreasesToday"`
	ReadCapacityUnits      int64 `json:"ReadCapacityUnits"`
	WriteCapacityUnits     int64 `json:"WriteCapacityUnits"`
}

type billingSummary struct {
	BillingMode                       string `json:"BillingMode"`
	LastUpdateToPayPerRequestDateTime *epoch `json:"LastUpdateToPayPerRequestDateTime,omitempty"`
}

type tableOut struct {
	AttributeDefinitions      []attributeDefinition `json:"AttributeDefinitions"`
	TableName                 string                `json:"TableName"`
	KeySchema                 []keySchemaElement    `json:"KeySchema"`
	TableStatus               string                `json:"TableStatus"`
	CreationDateTime          epoch                 `json:"CreationDateTime"`
	ProvisionedThroughput     throughputOut         `json:"ProvisionedThroughput"`
	TableSizeBytes            int64                 `json:"TableSizeBytes"`
	ItemCount                 int64                 `json:"ItemCount"`
	TableArn                  string                `json:"TableArn"`
	TableId                   string                `json:"TableId"`
	BillingModeSummary        *billingSummary       `json:"BillingModeSummary,omitempty"`
	DeletionProtectionEnabled bool                  `json:"DeletionProtectionEnabled"`
	WarmThroughput            warmThroughput        `json:"WarmThroughput"`
}

// warmThroughput is the base table's warm throughput: the provisioned
// capacity, or the initial on-demand throughput (12,000 reads and 4,000
// writes a second).
type warmThroughput struct {
	ReadUnitsPerSecond  int64  `json:"ReadUnitsPerSecond"`
	WriteUnitsPerSecond int64  `json:"WriteUnitsPerSecond"`
	Status              string `json:"Status"`
}

func describe(d tables.TableDescription) tableOut {
	out := tableOut{
		TableName: d.Name, TableStatus: d.Status, CreationDateTime: epoch(d.Created),
		ProvisionedThroughput: throughputOut{ReadCapacityUnits: d.Throughput.Read, WriteCapacityUnits: d.Throughput.Write},
		TableSizeBytes:        d.SizeBytes, ItemCount: d.ItemCount, TableArn: d.ARN, TableId: d.ID,
		DeletionProtectionEnabled: d.DeletionProtection,
		WarmThroughput:            warmThroughput{ReadUnitsPerSecond: d.Throughput.Read, WriteUnitsPerSecond: d.Throughput.Write, Status: "ACTIVE"},
	}
	if d.BillingMode == tables.PayPerRequest {
		out.WarmThroughput.ReadUnitsPerSecond, out.WarmThroughput.WriteUnitsPerSecond = 12000, 4000
	}
	for _, k := range d.KeySchema {
		out.KeySchema = append(out.KeySchema, keySchemaElement{&k.AttributeName, &k.KeyType})
	}
	for _, a := range d.Attributes {
		out.AttributeDefinitions = append(out.AttributeDefinitions, attributeDefinition{&a.AttributeName, &a.AttributeType})
	}
	if d.BillingMode == tables.PayPerRequest {
		c := epoch(d.Created)
		out.BillingModeSummary = &billingSummary{BillingMode: d.BillingMode, LastUpdateToPayPerRequestDateTime: &c}
	}
	return out
}

// set reports whether an optional member was sent with a value.
func set(raw json.RawMessage) bool {
	return !isNull(raw) && string(raw) != "[]" && string(raw) != "{}"
}

type tableNameIn struct {
	TableName *string `json:"TableName"`
}

func (in tableNameIn) name() (string, error) {
	if in.TableName == nil {
		return "", required("tableName")
	}
	return *in.TableName, nil
}

// Tables -----------------------------------------------------------------------

func (h *Handler) createTable(r request) (any, error) {
	var in struct {
		tableNameIn
		KeySchema             []keySchemaElement    `json:"KeySchema"`
		AttributeDefinitions  []attributeDefinition `json:"AttributeDefinitions"`
		BillingMode           *string               `json:"BillingMode"`
		ProvisionedThroughput *struct {
			ReadCapacityUnits  *int64 `json:"ReadCapacityUnits"`
			WriteCapacityUnits *int64 `json:"WriteCapacityUnits"`
		} `json:"ProvisionedThroughput"`
		DeletionProtectionEnabled *bool `json:"DeletionProtectionEnabled"`
		StreamSpecification       *struct {
			StreamEnabled *bool `json:"StreamEnabled"`
		} `json:"StreamSpecification"`
		GlobalSecondaryIndexes json.RawMessage `json:"GlobalSecondaryIndexes"`
		LocalSecondaryIndexes  json.RawMessage `json:"LocalSecondaryIndexes"`
		SSESpecification       json.RawMessage `json:"SSESpecification"`
		Tags                   json.RawMessage `json:"Tags"`
		TableClass             json.RawMessage `json:"TableClass"`
		OnDemandThroughput     json.RawMessage `json:"OnDemandThroughput"`
		WarmThroughput         json.RawMessage `json:"WarmThroughput"`
		ResourcePolicy         json.RawMessage `json:"ResourcePolicy"`
		GlobalTableSourceArn   json.RawMessage `json:"GlobalTableSourceArn"`
		VectorIndexes          json.RawMessage `json:"VectorIndexes"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	if in.KeySchema == nil {
		return nil, required("keySchema")
	}
	if in.AttributeDefinitions == nil {
		return nil, required("attributeDefinitions")
	}
	if err := notModelled("CreateTable", map[string]bool{
		"GlobalSecondaryIndexes": set(in.GlobalSecondaryIndexes), "LocalSecondaryIndexes": set(in.LocalSecondaryIndexes),
		"StreamSpecification": in.StreamSpecification != nil && in.StreamSpecification.StreamEnabled != nil && *in.StreamSpecification.StreamEnabled,
		"SSESpecification":    set(in.SSESpecification), "Tags": set(in.Tags), "TableClass": set(in.TableClass),
		"OnDemandThroughput": set(in.OnDemandThroughput), "WarmThroughput": set(in.WarmThroughput),
		"ResourcePolicy": set(in.ResourcePolicy), "GlobalTableSourceArn": set(in.GlobalTableSourceArn), "VectorIndexes": set(in.VectorIndexes),
	}); err != nil {
		return nil, err
	}
	spec := tables.TableSpec{Name: name, DeletionProtection: in.DeletionProtectionEnabled != nil && *in.DeletionProtectionEnabled}
	for i, k := range in.KeySchema {
		if k.AttributeName == nil {
			return nil, required("keySchema." + strconv.Itoa(i+1) + ".member.attributeName")
		}
		if k.KeyType == nil {
			return nil, required("keySchema." + strconv.Itoa(i+1) + ".member.keyType")
		}
		spec.KeySchema = append(spec.KeySchema, tables.KeySchemaElement{AttributeName: *k.AttributeName, KeyType: *k.KeyType})
	}
	for i, a := range in.AttributeDefinitions {
		if a.AttributeName == nil {
			return nil, required("attributeDefinitions." + strconv.Itoa(i+1) + ".member.attributeName")
		}
		if a.AttributeType == nil {
			return nil, required("attributeDefinitions." + strconv.Itoa(i+1) + ".member.attributeType")
		}
		spec.Attributes = append(spec.Attributes, tables.AttributeDefinition{AttributeName: *a.AttributeName, AttributeType: *a.AttributeType})
	}
	if in.BillingMode != nil {
		spec.BillingMode = *in.BillingMode
	}
	if tp := in.ProvisionedThroughput; tp != nil {
		if tp.ReadCapacityUnits == nil {
			return nil, required("provisionedThroughput.readCapacityUnits")
		}
		if tp.WriteCapacityUnits == nil {
			return nil, required("provisionedThroughput.writeCapacityUnits")
		}
		spec.Throughput = &tables.Throughput{Read: *tp.ReadCapacityUnits, Write: *tp.WriteCapacityUnits}
	}
	d, err := h.t.CreateTable(spec)
	if err != nil {
		return nil, err
	}
	return map[string]any{"TableDescription": describe(d)}, nil
}

func (h *Handler) describeTable(r request) (any, error) {
	var in tableNameIn
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	d, err := h.t.DescribeTable(name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Table": describe(d)}, nil
}

func (h *Handler) deleteTable(r request) (any, error) {
	var in tableNameIn
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	d, err := h.t.DeleteTable(name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"TableDescription": describe(d)}, nil
}

func (h *Handler) listTables(r request) (any, error) {
	var in struct {
		ExclusiveStartTableName *string `json:"ExclusiveStartTableName"`
		Limit                   *int    `json:"Limit"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	limit := 0
	if in.Limit != nil {
		switch limit = *in.Limit; {
		case limit < 1:
			return nil, validation("1 validation error detected: Value '" + strconv.Itoa(limit) + "' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
		case limit > 100:
			return nil, validation("1 validation error detected: Value '" + strconv.Itoa(limit) + "' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100")
		}
	}
	names, last, err := h.t.ListTables(str(in.ExclusiveStartTableName), limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		TableNames             []string `json:"TableNames"`
		LastEvaluatedTableName string   `json:"LastEvaluatedTableName,omitempty"`
	}{names, last}
	if out.TableNames == nil {
		out.TableNames = []string{}
	}
	return out, nil
}

type ttlSpec struct {
	AttributeName *string `json:"AttributeName"`
	Enabled       *bool   `json:"Enabled"`
}

func (h *Handler) updateTimeToLive(r request) (any, error) {
	var in struct {
		tableNameIn
		TimeToLiveSpecification *ttlSpec `json:"TimeToLiveSpecification"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	s := in.TimeToLiveSpecification
	switch {
	case s == nil:
		return nil, required("timeToLiveSpecification")
	case s.AttributeName == nil:
		return nil, required("timeToLiveSpecification.attributeName")
	case s.Enabled == nil:
		return nil, required("timeToLiveSpecification.enabled")
	}
	ttl, err := h.t.UpdateTimeToLive(name, tables.TTL{AttributeName: *s.AttributeName, Enabled: *s.Enabled})
	if err != nil {
		return nil, err
	}
	return map[string]any{"TimeToLiveSpecification": ttlSpec{&ttl.AttributeName, &ttl.Enabled}}, nil
}

func (h *Handler) describeTimeToLive(r request) (any, error) {
	var in tableNameIn
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	ttl, err := h.t.DescribeTimeToLive(name)
	if err != nil {
		return nil, err
	}
	desc := map[string]any{"TimeToLiveStatus": "DISABLED"}
	if ttl.Enabled {
		desc = map[string]any{"TimeToLiveStatus": "ENABLED", "AttributeName": ttl.AttributeName}
	}
	return map[string]any{"TimeToLiveDescription": desc}, nil
}

// Items ----------------------------------------------------------------------------

// exprIn is the placeholder members shared by the item operations.
type exprIn struct {
	ExpressionAttributeNames  map[string]string `json:"ExpressionAttributeNames"`
	ExpressionAttributeValues rawItem           `json:"ExpressionAttributeValues"`
	ReturnConsumedCapacity    *string           `json:"ReturnConsumedCapacity"`
	// Legacy members the sandbox does not model.
	Expected            json.RawMessage `json:"Expected"`
	ConditionalOperator json.RawMessage `json:"ConditionalOperator"`
	AttributesToGet     json.RawMessage `json:"AttributesToGet"`
	AttributeUpdates    json.RawMessage `json:"AttributeUpdates"`
	KeyConditions       json.RawMessage `json:"KeyConditions"`
	QueryFilter         json.RawMessage `json:"QueryFilter"`
}

func (in exprIn) expressions(op string) (tables.Expressions, error) {
	if err := notModelled(op, map[string]bool{
		"Expected (use ConditionExpression)": set(in.Expected), "ConditionalOperator": set(in.ConditionalOperator),
		"AttributesToGet (use ProjectionExpression)": set(in.AttributesToGet), "AttributeUpdates (use UpdateExpression)": set(in.AttributeUpdates),
		"KeyConditions (use KeyConditionExpression)": set(in.KeyConditions), "QueryFilter (use FilterExpression)": set(in.QueryFilter),
	}); err != nil {
		return tables.Expressions{}, err
	}
	if in.ReturnConsumedCapacity != nil {
		switch *in.ReturnConsumedCapacity {
		case "NONE", "TOTAL", "INDEXES":
		default:
			return tables.Expressions{}, validation("1 validation error detected: Value '" + *in.ReturnConsumedCapacity + "' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]")
		}
	}
	x := tables.Expressions{Names: in.ExpressionAttributeNames}
	vals, err := decodeItem(in.ExpressionAttributeValues)
	if err != nil {
		return x, err
	}
	x.Values = vals
	return x, nil
}

// capacity is the ConsumedCapacity member, when asked for.
func (in exprIn) capacity(table string, units float64) any {
	if in.ReturnConsumedCapacity == nil {
		return nil
	}
	switch *in.ReturnConsumedCapacity {
	case "TOTAL":
		return map[string]any{"TableName": table, "CapacityUnits": units}
	case "INDEXES":
		return map[string]any{"TableName": table, "CapacityUnits": units, "Table": map[string]any{"CapacityUnits": units}}
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type writeOut struct {
	Attributes       map[string]any `json:"Attributes,omitempty"`
	ConsumedCapacity any            `json:"ConsumedCapacity,omitempty"`
}

func (h *Handler) getItem(r request) (any, error) {
	var in struct {
		tableNameIn
		exprIn
		Key                  rawItem `json:"Key"`
		ConsistentRead       *bool   `json:"ConsistentRead"`
		ProjectionExpression *string `json:"ProjectionExpression"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	if in.Key == nil {
		return nil, required("key")
	}
	if _, err := in.expressions("GetItem"); err != nil {
		return nil, err
	}
	key, err := decodeItem(in.Key)
	if err != nil {
		return nil, err
	}
	it, units, err := h.t.GetItem(tables.GetItemInput{
		Table: name, Key: key, ConsistentRead: in.ConsistentRead != nil && *in.ConsistentRead,
		Projection: in.ProjectionExpression, Names: in.ExpressionAttributeNames,
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Item             map[string]any `json:"Item,omitempty"`
		ConsumedCapacity any            `json:"ConsumedCapacity,omitempty"`
	}{encodeItem(it), in.capacity(name, units)}, nil
}

type writeIn struct {
	tableNameIn
	exprIn
	ConditionExpression                 *string `json:"ConditionExpression"`
	ReturnValues                        *string `json:"ReturnValues"`
	ReturnValuesOnConditionCheckFailure *string `json:"ReturnValuesOnConditionCheckFailure"`
	ReturnItemCollectionMetrics         *string `json:"ReturnItemCollectionMetrics"`
}

// prepare checks what every item write shares, in AWS's order: the table
// name, the item or key (member names it when missing), the expressions'
// placeholders, then the item's attribute values.
func (in writeIn) prepare(op, member string, raw rawItem) (string, tables.Expressions, tables.Item, error) {
	name, err := in.name()
	if err != nil {
		return "", tables.Expressions{}, nil, err
	}
	if raw == nil {
		return "", tables.Expressions{}, nil, required(member)
	}
	x, err := in.expressions(op)
	if err != nil {
		return "", tables.Expressions{}, nil, err
	}
	item, err := decodeItem(raw)
	if err != nil {
		return "", tables.Expressions{}, nil, err
	}
	return name, x, item, nil
}

func (h *Handler) putItem(r request) (any, error) {
	var in struct {
		writeIn
		Item rawItem `json:"Item"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, x, item, err := in.prepare("PutItem", "item", in.Item)
	if err != nil {
		return nil, err
	}
	out, err := h.t.PutItem(tables.PutItemInput{
		Table: name, Item: item, Condition: in.ConditionExpression, Expressions: x,
		ReturnValues: str(in.ReturnValues), ReturnValuesOnConditionCheckFailure: str(in.ReturnValuesOnConditionCheckFailure),
	})
	if err != nil {
		return nil, err
	}
	return writeOut{encodeItem(out.Attributes), in.capacity(name, out.Units)}, nil
}

func (h *Handler) updateItem(r request) (any, error) {
	var in struct {
		writeIn
		Key              rawItem `json:"Key"`
		UpdateExpression *string `json:"UpdateExpression"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, x, key, err := in.prepare("UpdateItem", "key", in.Key)
	if err != nil {
		return nil, err
	}
	out, err := h.t.UpdateItem(tables.UpdateItemInput{
		Table: name, Key: key, Update: in.UpdateExpression, Condition: in.ConditionExpression, Expressions: x,
		ReturnValues: str(in.ReturnValues), ReturnValuesOnConditionCheckFailure: str(in.ReturnValuesOnConditionCheckFailure),
	})
	if err != nil {
		return nil, err
	}
	return writeOut{encodeItem(out.Attributes), in.capacity(name, out.Units)}, nil
}

func (h *Handler) deleteItem(r request) (any, error) {
	var in struct {
		writeIn
		Key rawItem `json:"Key"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, x, key, err := in.prepare("DeleteItem", "key", in.Key)
	if err != nil {
		return nil, err
	}
	out, err := h.t.DeleteItem(tables.DeleteItemInput{
		Table: name, Key: key, Condition: in.ConditionExpression, Expressions: x,
		ReturnValues: str(in.ReturnValues), ReturnValuesOnConditionCheckFailure: str(in.ReturnValuesOnConditionCheckFailure),
	})
	if err != nil {
		return nil, err
	}
	return writeOut{encodeItem(out.Attributes), in.capacity(name, out.Units)}, nil
}

func (h *Handler) query(r request) (any, error) {
	var in struct {
		tableNameIn
		exprIn
		KeyConditionExpression *string `json:"KeyConditionExpression"`
		FilterExpression       *string `json:"FilterExpression"`
		ProjectionExpression   *string `json:"ProjectionExpression"`
		IndexName              *string `json:"IndexName"`
		Limit                  *int    `json:"Limit"`
		ExclusiveStartKey      rawItem `json:"ExclusiveStartKey"`
		ScanIndexForward       *bool   `json:"ScanIndexForward"`
		ConsistentRead         *bool   `json:"ConsistentRead"`
		Select                 *string `json:"Select"`
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	name, err := in.name()
	if err != nil {
		return nil, err
	}
	x, err := in.expressions("Query")
	if err != nil {
		return nil, err
	}
	start, err := decodeItem(in.ExclusiveStartKey)
	if err != nil {
		return nil, err
	}
	q := tables.QueryInput{
		Table: name, KeyCondition: in.KeyConditionExpression, Filter: in.FilterExpression, Projection: in.ProjectionExpression,
		Expressions: x, ExclusiveStartKey: start, Backward: in.ScanIndexForward != nil && !*in.ScanIndexForward,
		ConsistentRead: in.ConsistentRead != nil && *in.ConsistentRead, Select: str(in.Select), IndexName: in.IndexName,
	}
	if in.Limit != nil {
		if *in.Limit < 1 {
			return nil, validation("1 validation error detected: Value '" + strconv.Itoa(*in.Limit) + "' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
		}
		q.Limit = *in.Limit
	}
	out, err := h.t.Query(q)
	if err != nil {
		return nil, err
	}
	res := struct {
		Items            any            `json:"Items,omitempty"`
		Count            int            `json:"Count"`
		ScannedCount     int            `json:"ScannedCount"`
		LastEvaluatedKey map[string]any `json:"LastEvaluatedKey,omitempty"`
		ConsumedCapacity any            `json:"ConsumedCapacity,omitempty"`
	}{Count: out.Count, ScannedCount: out.ScannedCount, LastEvaluatedKey: encodeItem(out.LastEvaluatedKey), ConsumedCapacity: in.capacity(name, out.Units)}
	if out.Items != nil {
		items := make([]map[string]any, len(out.Items))
		for i, it := range out.Items {
			items[i] = encodeItem(it)
		}
		res.Items = items
	}
	return res, nil
}

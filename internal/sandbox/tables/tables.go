// Package tables is the sandbox's DynamoDB state: tables, their items and
// the expression language that reads and writes them (conditions,
// updates, key conditions, filters, projections). It is one state owner:
// everything changes through its methods, under its own lock, and it
// imports no other owner and no service package.
//
// It validates and answers as DynamoDB does, with AWS's ValidationException
// texts; the dynamodb package translates its types to and from the wire.
// Numbers are exact decimals (38 significant digits), never floats.
package tables

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// Recorder receives the owner's events. Control events (a table created,
// active, deleted, its TTL changed) belong in the ordered log; data-plane
// events (item writes) are only counted, so they never evict lifecycle
// history. The owner calls it with its lock held: a Recorder must not call
// back into Tables (lock order: tables, then the event log).
type Recorder interface {
	Control(kind string, attrs map[string]string)
	Data(kind string)
}

// Event kinds passed to the Recorder.
const (
	EventTableCreated  = "table-created"    // control: table, billing_mode
	EventTableActive   = "table-active"     // control: table
	EventTableDeleted  = "table-deleted"    // control: table
	EventTTLUpdated    = "ttl-updated"      // control: table, attribute, enabled
	EventItemPut       = "item-put"         // data
	EventItemUpdated   = "item-updated"     // data
	EventItemDeleted   = "item-deleted"     // data
	EventConditionFail = "condition-failed" // data: a write whose condition failed
)

// DefaultCreateDelay is how long a new table stays CREATING.
const DefaultCreateDelay = time.Second

// Config configures the owner.
type Config struct {
	// Region and Account appear in table ARNs (us-east-1, 123456789012).
	Region, Account string
	// CreateDelay is how long a new table stays CREATING before it is
	// ACTIVE, on the owner's clock; DefaultCreateDelay when zero.
	CreateDelay time.Duration
}

// Tables holds every table. Use New; it is safe for concurrent use.
type Tables struct {
	cfg   Config
	clock simclock.Clock
	rec   Recorder

	mu     sync.Mutex
	tables map[string]*table
}

// New returns an empty owner on clock; rec may be nil.
func New(cfg Config, clock simclock.Clock, rec Recorder) *Tables {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "123456789012"
	}
	if cfg.CreateDelay <= 0 {
		cfg.CreateDelay = DefaultCreateDelay
	}
	if rec == nil {
		rec = nopRecorder{}
	}
	return &Tables{cfg: cfg, clock: clock, rec: rec, tables: map[string]*table{}}
}

type nopRecorder struct{}

func (nopRecorder) Control(string, map[string]string) {}
func (nopRecorder) Data(string)                       {}

// Close stops the timers of tables still being created. The state stays
// readable.
func (t *Tables) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tb := range t.tables {
		if tb.timer != nil {
			tb.timer.Stop()
			tb.timer = nil
		}
	}
}

// KeySchemaElement is one key attribute: KeyType HASH or RANGE.
type KeySchemaElement struct {
	AttributeName string
	KeyType       string
}

// AttributeDefinition is a key attribute's type: S, N or B.
type AttributeDefinition struct {
	AttributeName string
	AttributeType string
}

// Throughput is provisioned capacity.
type Throughput struct {
	Read, Write int64
}

// Billing modes.
const (
	Provisioned   = "PROVISIONED"
	PayPerRequest = "PAY_PER_REQUEST"
)

// TableSpec is a CreateTable request.
type TableSpec struct {
	Name       string
	KeySchema  []KeySchemaElement
	Attributes []AttributeDefinition
	// BillingMode is Provisioned (the default when empty) or PayPerRequest.
	BillingMode string
	// Throughput is required with Provisioned and forbidden otherwise.
	Throughput *Throughput
	// DeletionProtection refuses DeleteTable while set.
	DeletionProtection bool
}

// TableDescription is what DescribeTable shows.
type TableDescription struct {
	Name, ARN, ID      string
	Status             string // CREATING, ACTIVE or DELETING
	Created            time.Time
	KeySchema          []KeySchemaElement
	Attributes         []AttributeDefinition
	BillingMode        string
	Throughput         Throughput // zero with PayPerRequest
	ItemCount          int64
	SizeBytes          int64
	DeletionProtection bool
}

// TTL is a table's time-to-live setting. Items are never reaped: TTL in
// DynamoDB is garbage collection within days, not expiry.
type TTL struct {
	AttributeName string
	Enabled       bool
}

type table struct {
	spec     TableSpec
	hash     KeyElement
	rng      KeyElement // Name empty without a range key
	arn, id  string
	created  time.Time
	activeAt time.Time
	timer    simclock.Timer
	ttl      TTL
	items    map[string]Item
}

// KeyElement is a key attribute with its type.
type KeyElement struct {
	Name string
	Type Type
}

func (tb *table) status(now time.Time) string {
	if now.Before(tb.activeAt) {
		return "CREATING"
	}
	return "ACTIVE"
}

func (tb *table) keyNames() []string {
	if tb.rng.Name == "" {
		return []string{tb.hash.Name}
	}
	return []string{tb.hash.Name, tb.rng.Name}
}

func (tb *table) isKey(name string) bool {
	return name == tb.hash.Name || tb.rng.Name != "" && name == tb.rng.Name
}

func (tb *table) describe(now time.Time, status string) TableDescription {
	d := TableDescription{
		Name: tb.spec.Name, ARN: tb.arn, ID: tb.id, Status: status, Created: tb.created,
		KeySchema: tb.spec.KeySchema, Attributes: tb.spec.Attributes, BillingMode: tb.spec.BillingMode,
		DeletionProtection: tb.spec.DeletionProtection, ItemCount: int64(len(tb.items)),
	}
	if status == "" {
		d.Status = tb.status(now)
	}
	if tb.spec.Throughput != nil {
		d.Throughput = *tb.spec.Throughput
	}
	for _, it := range tb.items {
		d.SizeBytes += int64(it.Size())
	}
	return d
}

var tableNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`) })

func checkTableName(name string) error {
	switch {
	case len(name) < 3:
		return validationf("1 validation error detected: Value '%s' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3", name)
	case len(name) > 255:
		return validationf("1 validation error detected: Value '%s' at 'tableName' failed to satisfy constraint: Member must have length less than or equal to 255", name)
	case !tableNamePattern().MatchString(name):
		return validationf("1 validation error detected: Value '%s' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", name)
	}
	return nil
}

// resolveName accepts a table name or, for the item operations, a table
// ARN of this account and region.
func (t *Tables) resolveName(name string) (string, error) {
	if rest, ok := strings.CutPrefix(name, "arn:"); ok {
		prefix := fmt.Sprintf("aws:dynamodb:%s:%s:table/", t.cfg.Region, t.cfg.Account)
		if n, ok := strings.CutPrefix(rest, prefix); ok && tableNamePattern().MatchString(n) {
			return n, nil
		}
		return "", notFound()
	}
	return name, checkTableName(name)
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// CreateTable validates spec and creates the table, CREATING until
// Config.CreateDelay has passed. Errors: ValidationException,
// ResourceInUseException when the name is taken.
func (t *Tables) CreateTable(spec TableSpec) (TableDescription, error) {
	hash, rng, err := validateSpec(&spec)
	if err != nil {
		return TableDescription{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.tables[spec.Name]; ok {
		return TableDescription{}, &Error{Code: CodeResourceInUse, Message: "Table already exists: " + spec.Name}
	}
	now := t.clock.Now()
	tb := &table{
		spec: spec, hash: hash, rng: rng, id: uuid(), created: now, activeAt: now.Add(t.cfg.CreateDelay),
		arn:   fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", t.cfg.Region, t.cfg.Account, spec.Name),
		items: map[string]Item{},
	}
	t.tables[spec.Name] = tb
	t.rec.Control(EventTableCreated, map[string]string{"table": spec.Name, "billing_mode": spec.BillingMode})
	tb.timer = t.clock.AfterFunc(t.cfg.CreateDelay, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.tables[spec.Name] == tb && tb.timer != nil {
			tb.timer = nil
			t.rec.Control(EventTableActive, map[string]string{"table": spec.Name})
		}
	})
	return tb.describe(now, "CREATING"), nil
}

func validateSpec(spec *TableSpec) (hash, rng KeyElement, err error) {
	if err := checkTableName(spec.Name); err != nil {
		return hash, rng, err
	}
	ks := spec.KeySchema
	if len(ks) == 0 {
		return hash, rng, validationf("1 validation error detected: Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(ks) > 2 {
		parts := make([]string, len(ks))
		for i, k := range ks {
			parts[i] = fmt.Sprintf("KeySchemaElement(attributeName=%s, keyType=%s)", k.AttributeName, k.KeyType)
		}
		return hash, rng, validationf("1 validation error detected: Value '[%s]' at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2", strings.Join(parts, ", "))
	}
	for i, k := range ks {
		if k.KeyType != "HASH" && k.KeyType != "RANGE" {
			return hash, rng, validationf("1 validation error detected: Value '%s' at 'keySchema.%d.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]", k.KeyType, i+1)
		}
		if k.AttributeName == "" || len(k.AttributeName) > 255 {
			return hash, rng, validationf("1 validation error detected: Value '%s' at 'keySchema.%d.member.attributeName' failed to satisfy constraint: Member must have length between 1 and 255", k.AttributeName, i+1)
		}
	}
	for i, a := range spec.Attributes {
		if a.AttributeType != "S" && a.AttributeType != "N" && a.AttributeType != "B" {
			return hash, rng, validationf("1 validation error detected: Value '%s' at 'attributeDefinitions.%d.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]", a.AttributeType, i+1)
		}
	}
	switch spec.BillingMode {
	case "":
		spec.BillingMode = Provisioned
	case Provisioned, PayPerRequest:
	default:
		return hash, rng, validationf("1 validation error detected: Value '%s' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]", spec.BillingMode)
	}
	if tp := spec.Throughput; tp != nil {
		if tp.Read < 1 {
			return hash, rng, validationf("1 validation error detected: Value '%d' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1", tp.Read)
		}
		if tp.Write < 1 {
			return hash, rng, validationf("1 validation error detected: Value '%d' at 'provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1", tp.Write)
		}
	}
	if spec.BillingMode == PayPerRequest && spec.Throughput != nil {
		return hash, rng, validationf("One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")
	}
	if spec.BillingMode == Provisioned && spec.Throughput == nil {
		return hash, rng, validationf("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")
	}
	if ks[0].KeyType != "HASH" {
		return hash, rng, validationf("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
	}
	if len(ks) == 2 {
		if ks[1].KeyType != "RANGE" {
			return hash, rng, validationf("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
		}
		if ks[0].AttributeName == ks[1].AttributeName {
			return hash, rng, validationf("Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have the same name")
		}
	}
	defs := map[string]Type{}
	for _, a := range spec.Attributes {
		defs[a.AttributeName] = Type(a.AttributeType)
	}
	var keys, names []string
	for _, k := range ks {
		keys = append(keys, k.AttributeName)
	}
	for _, a := range spec.Attributes {
		names = append(names, a.AttributeName)
	}
	sort.Strings(keys)
	sort.Strings(names)
	if strings.Join(keys, "\x00") != strings.Join(names, "\x00") {
		switch {
		case len(names) > len(keys):
			return hash, rng, validationf("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")
		case len(names) < len(keys):
			return hash, rng, validationf("Invalid KeySchema: Some index key attribute have no definition")
		default:
			return hash, rng, validationf("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [%s], AttributeDefinitions: [%s]", strings.Join(keys, ", "), strings.Join(names, ", "))
		}
	}
	hash = KeyElement{Name: ks[0].AttributeName, Type: defs[ks[0].AttributeName]}
	if len(ks) == 2 {
		rng = KeyElement{Name: ks[1].AttributeName, Type: defs[ks[1].AttributeName]}
	}
	return hash, rng, nil
}

// DescribeTable returns a table's description, or ResourceNotFoundException.
func (t *Tables) DescribeTable(name string) (TableDescription, error) {
	if err := checkTableName(name); err != nil {
		return TableDescription{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, ok := t.tables[name]
	if !ok {
		return TableDescription{}, tableNotFound(name)
	}
	return tb.describe(t.clock.Now(), ""), nil
}

// ListTables returns up to limit (1–100; 100 when 0) table names in
// order, after start; last is the last name returned when more follow.
func (t *Tables) ListTables(start string, limit int) (names []string, last string, err error) {
	if limit < 0 || limit > 100 {
		return nil, "", validationf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value %s", limit,
			map[bool]string{true: "greater than or equal to 1", false: "less than or equal to 100"}[limit < 1])
	}
	if limit == 0 {
		limit = 100
	}
	if start != "" {
		if err := checkTableName(start); err != nil {
			return nil, "", validationf("%s", strings.Replace(err.Error()[len(CodeValidation)+2:], "'tableName'", "'exclusiveStartTableName'", 1))
		}
	}
	t.mu.Lock()
	all := make([]string, 0, len(t.tables))
	for n := range t.tables {
		if n > start {
			all = append(all, n)
		}
	}
	t.mu.Unlock()
	sort.Strings(all)
	if len(all) > limit {
		return all[:limit], all[limit-1], nil
	}
	return all, "", nil
}

// DeleteTable removes a table and its items and returns its description
// with status DELETING. Errors: ResourceNotFoundException;
// ResourceInUseException while it is being created; ValidationException
// when deletion protection is on.
func (t *Tables) DeleteTable(name string) (TableDescription, error) {
	if err := checkTableName(name); err != nil {
		return TableDescription{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, ok := t.tables[name]
	if !ok {
		return TableDescription{}, tableNotFound(name)
	}
	now := t.clock.Now()
	if tb.status(now) == "CREATING" {
		return TableDescription{}, &Error{Code: CodeResourceInUse, Message: "Attempt to change a resource which is still in use: Table is being created: " + name}
	}
	if tb.spec.DeletionProtection {
		return TableDescription{}, validationf("Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.")
	}
	d := tb.describe(now, "DELETING")
	if tb.timer != nil {
		tb.timer.Stop()
		tb.timer = nil
	}
	delete(t.tables, name)
	t.rec.Control(EventTableDeleted, map[string]string{"table": name})
	return d, nil
}

// UpdateTimeToLive stores a table's TTL setting (items are not reaped).
// Errors are AWS's: enabling twice, disabling what is not enabled, or
// disabling under another attribute name.
func (t *Tables) UpdateTimeToLive(name string, spec TTL) (TTL, error) {
	if err := checkTableName(name); err != nil {
		return TTL{}, err
	}
	if spec.AttributeName == "" || len(spec.AttributeName) > 255 {
		return TTL{}, validationf("1 validation error detected: Value '%s' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length between 1 and 255", spec.AttributeName)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, ok := t.tables[name]
	if !ok {
		return TTL{}, tableNotFound(name)
	}
	switch {
	case spec.Enabled && tb.ttl.Enabled:
		return TTL{}, validationf("TimeToLive is already enabled")
	case !spec.Enabled && !tb.ttl.Enabled:
		return TTL{}, validationf("TimeToLive is already disabled")
	case !spec.Enabled && tb.ttl.AttributeName != spec.AttributeName:
		return TTL{}, validationf("TimeToLive is active on a different AttributeName: current AttributeName is %s", tb.ttl.AttributeName)
	}
	tb.ttl = spec
	t.rec.Control(EventTTLUpdated, map[string]string{"table": name, "attribute": spec.AttributeName, "enabled": strconv.FormatBool(spec.Enabled)})
	return spec, nil
}

// DescribeTimeToLive returns a table's TTL setting.
func (t *Tables) DescribeTimeToLive(name string) (TTL, error) {
	if err := checkTableName(name); err != nil {
		return TTL{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, ok := t.tables[name]
	if !ok {
		return TTL{}, tableNotFound(name)
	}
	return tb.ttl, nil
}

// activeLocked finds a table that accepts item operations: it exists and
// is no longer being created.
func (t *Tables) activeLocked(name string) (*table, error) {
	tb, ok := t.tables[name]
	if !ok || tb.status(t.clock.Now()) != "ACTIVE" {
		return nil, notFound()
	}
	return tb, nil
}

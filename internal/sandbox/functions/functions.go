// Package functions is the sandbox's owner of Lambda functions: their
// configuration and code, resource policies, reserved concurrency, and the
// execution environments that run them.
//
// An execution environment is a local process group running the
// function's unzipped `bootstrap` in the function's code directory, with
// AWS_LAMBDA_RUNTIME_API pointing at a Runtime API server of its own on a
// loopback port (the real Lambda Runtime API: next, response, error, init
// error). An environment serves one invocation at a time, is reused while
// warm and stopped after it has been idle for Config.IdleTimeout; a
// timeout kills it. Asynchronous invocations are queued and retried twice
// on a function error, as Lambda does.
//
// Every change goes through a method of Functions under its one mutex and
// is recorded in the sandbox's event log: functions created, updated and
// deleted, policies and concurrency changed, environments started and
// stopped on the control stream; invocations on the data stream. What a
// function prints goes to its console (Logs, and the admin API's
// /_sandbox/functions/{name}/logs), not to the event log.
//
// Lock order: Functions.mu comes after the broker's (messaging invokes
// functions through its Invoker interface, never while holding its own
// lock) and before the event log's. Functions calls no other owner. The
// processes and the Runtime API servers are started and stopped without
// the lock held.
package functions

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// Event kinds. Control stream:
const (
	EvFunction    = "lambda-function"    // a function created, its code or configuration updated, deleted
	EvPolicy      = "lambda-policy"      // a permission added or removed, reserved concurrency set or removed
	EvEnvironment = "lambda-environment" // an execution environment started or stopped (with why)
)

// Data stream:
const (
	EvInvoke       = "lambda-invoke"        // an invocation ended (attrs: type, result)
	EvInvokeRetry  = "lambda-invoke-retry"  // an asynchronous invocation failed and will be retried
	EvInvokeFailed = "lambda-invoke-failed" // an asynchronous invocation failed for good
)

// Runtimes the sandbox runs: custom runtimes, whose bootstrap is an
// executable in the zip.
var Runtimes = []string{"provided.al2023", "provided.al2"}

// Config configures the owner.
type Config struct {
	Region, Account string // us-east-1, 123456789012
	// Dir holds each function's code, Dir/<name>/<code sha>/.
	Dir string
	// Processes runs execution environments; without it Invoke answers an
	// error saying so (the sandbox in memory or with NoProcesses).
	Processes bool
	// Endpoint returns the sandbox's API endpoint, given to functions as
	// AWS_ENDPOINT_URL (called when an environment starts).
	Endpoint func() string
	// IdleTimeout stops an environment idle this long (5 minutes).
	IdleTimeout time.Duration
	// RetryDelays are the waits before an asynchronous invocation's two
	// retries (1 and 2 minutes, as Lambda).
	RetryDelays [2]time.Duration
	// Events is the log the owner appends to (one of its own when nil).
	Events *eventlog.Log
	Logger *slog.Logger
	Seed   uint64
}

// Functions owns the sandbox's Lambda functions. Create it with New, stop
// it with Close (which stops every environment).
type Functions struct {
	cfg    Config
	clock  simclock.Clock
	events *eventlog.Log
	log    *slog.Logger

	wg sync.WaitGroup // environments' supervisors, async invocations, timers

	done chan struct{} // closed by Close: asynchronous invocations stop waiting

	mu     sync.Mutex
	closed bool
	rng    *rand.Rand
	fns    map[string]*function
	envs   map[*env]bool // every environment running
	envN   int
}

// Function is a function's configuration as GetFunction shows it.
type Function struct {
	Name, ARN    string
	Runtime      string
	Role         string
	Handler      string
	Description  string
	Timeout      int // seconds
	MemorySize   int // MB
	Environment  map[string]string
	CodeSha256   string // base64 of the zip's SHA-256
	CodeSize     int64
	LastModified time.Time
	RevisionID   string
	Tags         map[string]string
	// Reserved is the reserved concurrency, nil when none is set.
	Reserved *int
}

type function struct {
	Function
	codeDir string
	zip     []byte
	version int // bumped by every code or configuration change: environments of an older one retire
	policy  []Statement
	idle    []*env
	active  int // environments serving an invocation or starting
	console console
}

// Statement is one statement of a function's resource policy.
type Statement struct {
	Sid, Action, Principal, SourceARN, SourceAccount, PrincipalOrgID string
}

// New returns an empty owner on clock.
func New(cfg Config, clock simclock.Clock) *Functions {
	cfg.Region = cmp.Or(cfg.Region, "us-east-1")
	cfg.Account = cmp.Or(cfg.Account, "123456789012")
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, 5*time.Minute)
	if cfg.RetryDelays == [2]time.Duration{} {
		cfg.RetryDelays = [2]time.Duration{time.Minute, 2 * time.Minute}
	}
	if clock == nil {
		clock = simclock.Real{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	events := cfg.Events
	if events == nil {
		events = eventlog.New(eventlog.Config{}, clock, log)
	}
	return &Functions{
		cfg: cfg, clock: clock, events: events, log: log,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5be0cd19137e2179)),
		fns: map[string]*function{}, envs: map[*env]bool{}, done: make(chan struct{}),
	}
}

// Close stops every environment and waits for invocations in flight.
func (f *Functions) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return
	}
	f.closed = true
	close(f.done)
	envs := make([]*env, 0, len(f.envs))
	for e := range f.envs {
		envs = append(envs, e)
	}
	for _, fn := range f.fns {
		fn.idle = nil
	}
	f.mu.Unlock()
	for _, e := range envs {
		e.stop("the sandbox is shutting down")
	}
	f.wg.Wait()
}

// Errors ---------------------------------------------------------------------

func notFound(arn string) *awsproto.Error {
	return &awsproto.Error{Code: "ResourceNotFoundException", Message: "Function not found: " + arn, Status: 404}
}

func invalid(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("InvalidParameterValueException", format, args...)
}

func conflict(format string, args ...any) *awsproto.Error {
	return &awsproto.Error{Code: "ResourceConflictException", Message: fmt.Sprintf(format, args...), Status: 409}
}

func validation(value, member, constraint string) *awsproto.Error {
	return awsproto.Errorf("ValidationException", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

var (
	nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`) })
	// refRE is a FunctionName as the API takes it: a name, a partial ARN
	// (account:function:name) or an ARN, each with an optional qualifier.
	refRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(arn:aws[a-zA-Z-]*:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d:)?(\d{12}:)?(function:)?([a-zA-Z0-9_-]+)(:(\$LATEST|[a-zA-Z0-9_-]+))?$`)
	})
)

// arn returns the ARN of a function name.
func (f *Functions) arn(name string) string {
	return "arn:aws:lambda:" + f.cfg.Region + ":" + f.cfg.Account + ":function:" + name
}

// ParseName returns the function name a FunctionName names, and its
// qualifier. It fails with AWS's errors for a malformed reference or one
// in another account or region.
func (f *Functions) ParseName(ref, qualifier string) (string, error) {
	m := refRE().FindStringSubmatch(ref)
	if m == nil || len(ref) > 140 {
		return "", validation(ref, "functionName", `Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`)
	}
	name := m[6]
	if r := strings.TrimSuffix(m[2], ":"); r != "" && r != f.cfg.Region {
		return "", invalid("Region %s does not match the region of the sandbox, %s.", r, f.cfg.Region)
	}
	if a := strings.TrimSuffix(m[4], ":"); a != "" && a != f.cfg.Account {
		return "", &awsproto.Error{Code: "AccessDeniedException", Message: "The sandbox's account is " + f.cfg.Account + "; it cannot reach functions of account " + a + ".", Status: 403}
	}
	if len(name) > 64 {
		return "", validation(ref, "functionName", "Member must have length less than or equal to 64")
	}
	q := m[8]
	if q != "" && qualifier != "" && q != qualifier {
		return "", invalid("The derived qualifier from the function name does not match the specified qualifier.")
	}
	q = cmp.Or(q, qualifier)
	if q != "" && q != "$LATEST" {
		return "", notFound(f.arn(name) + ":" + q)
	}
	return name, nil
}

// lookupLocked finds a function by name.
func (f *Functions) lookupLocked(name string) (*function, error) {
	fn, ok := f.fns[name]
	if !ok {
		return nil, notFound(f.arn(name))
	}
	return fn, nil
}

func (f *Functions) uuidLocked() string {
	var u [16]byte
	for i := range u {
		u[i] = byte(f.rng.IntN(256))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (f *Functions) control(kind, name, detail string) {
	f.events.Append(eventlog.Event{Service: "lambda", Kind: kind, Resource: f.arn(name), Detail: detail})
}

// CRUD -------------------------------------------------------------------------

// CreateInput is a CreateFunction call's input.
type CreateInput struct {
	Name, Runtime, Role, Handler, Description string
	Timeout, MemorySize                       *int
	Environment                               map[string]string
	ZipFile                                   []byte
	Tags                                      map[string]string
}

// ConfigInput is an UpdateFunctionConfiguration call's input: nil members
// are left as they are.
type ConfigInput struct {
	Runtime, Role, Handler, Description *string
	Timeout, MemorySize                 *int
	Environment                         *map[string]string
}

func checkLimits(timeout, memory *int, runtime *string) error {
	if runtime != nil && !slices.Contains(Runtimes, *runtime) {
		if *runtime == "" {
			return validation("", "runtime", "Member must not be null")
		}
		return invalid("The runtime parameter of %s is not supported by the lifeguard sandbox, which runs custom runtimes only: use %s with a zip whose bootstrap is an executable.", *runtime, strings.Join(Runtimes, " or "))
	}
	if timeout != nil {
		if *timeout < 1 {
			return validation(fmt.Sprint(*timeout), "timeout", "Member must have value greater than or equal to 1")
		}
		if *timeout > 900 {
			return invalid("Timeout value must be between 1 and 900 seconds; %d is too long.", *timeout)
		}
	}
	if memory != nil {
		if *memory < 128 {
			return validation(fmt.Sprint(*memory), "memorySize", "Member must have value greater than or equal to 128")
		}
		if *memory > 10240 {
			return validation(fmt.Sprint(*memory), "memorySize", "Member must have value less than or equal to 10240")
		}
	}
	return nil
}

func checkEnvironment(env map[string]string) error {
	size := 0
	for k, v := range env {
		if !envKeyRE().MatchString(k) {
			return validation(k, "environment.variables", "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+")
		}
		if reservedEnv[k] {
			return invalid("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", k)
		}
		size += len(k) + len(v)
	}
	if size > 4096 {
		return invalid("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %d", size)
	}
	return nil
}

var envKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`) })

var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true,
	"AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true, "AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true,
	"AWS_SESSION_TOKEN": true, "AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// Create creates a function from a zip and returns its configuration.
func (f *Functions) Create(in CreateInput) (Function, error) {
	if !nameRE().MatchString(in.Name) {
		if in.Name == "" {
			return Function{}, validation("", "functionName", "Member must not be null")
		}
		return Function{}, validation(in.Name, "functionName", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ and have length less than or equal to 64")
	}
	if in.Role == "" {
		return Function{}, validation("", "role", "Member must not be null")
	}
	if !roleRE().MatchString(in.Role) {
		return Function{}, validation(in.Role, "role", `Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	}
	if err := checkLimits(in.Timeout, in.MemorySize, &in.Runtime); err != nil {
		return Function{}, err
	}
	if err := checkEnvironment(in.Environment); err != nil {
		return Function{}, err
	}
	if len(in.ZipFile) == 0 {
		return Function{}, invalid("Please provide a source for function code: Code.ZipFile (the zip's bytes) is empty; the sandbox takes a zip, not an S3 object or an image.")
	}
	f.mu.Lock()
	if _, ok := f.fns[in.Name]; ok {
		f.mu.Unlock()
		return Function{}, conflict("Function already exist: %s", in.Name)
	}
	f.mu.Unlock()
	dir, sum, err := f.unpack(in.Name, in.ZipFile)
	if err != nil {
		return Function{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.fns[in.Name]; ok {
		return Function{}, conflict("Function already exist: %s", in.Name)
	}
	fn := &function{
		Function: Function{
			Name: in.Name, ARN: f.arn(in.Name), Runtime: in.Runtime, Role: in.Role,
			Handler: in.Handler, Description: in.Description,
			Timeout: deref(in.Timeout, 3), MemorySize: deref(in.MemorySize, 128),
			Environment: maps.Clone(in.Environment), CodeSha256: sum, CodeSize: int64(len(in.ZipFile)),
			LastModified: f.clock.Now().UTC(), RevisionID: f.uuidLocked(), Tags: maps.Clone(in.Tags),
		},
		codeDir: dir, zip: in.ZipFile, version: 1,
	}
	f.fns[in.Name] = fn
	f.control(EvFunction, in.Name, fmt.Sprintf("created %s (%s, %d bytes of code, sha256 %s)", in.Name, in.Runtime, len(in.ZipFile), sum))
	return fn.snapshot(), nil
}

var roleRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
})

func deref(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func (fn *function) snapshot() Function {
	out := fn.Function
	out.Environment = maps.Clone(fn.Environment)
	out.Tags = maps.Clone(fn.Tags)
	if fn.Reserved != nil {
		r := *fn.Reserved
		out.Reserved = &r
	}
	return out
}

// unpack writes a zip's files to a new code directory of the function.
func (f *Functions) unpack(name string, zip []byte) (dir, sum string, err error) {
	h := sha256.Sum256(zip)
	sum = base64.StdEncoding.EncodeToString(h[:])
	dir = filepath.Join(f.cfg.Dir, name, fmt.Sprintf("%x", h[:8]))
	if _, err := os.Stat(dir); err == nil {
		return dir, sum, nil
	}
	if err := unzip(zip, dir); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", err
	}
	return dir, sum, nil
}

// Get returns a function's configuration.
func (f *Functions) Get(name string) (Function, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return Function{}, err
	}
	return fn.snapshot(), nil
}

// Code returns a function's zip.
func (f *Functions) Code(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return nil, err
	}
	return fn.zip, nil
}

// List returns every function, by name.
func (f *Functions) List() []Function {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Function, 0, len(f.fns))
	for _, name := range slices.Sorted(maps.Keys(f.fns)) {
		out = append(out, f.fns[name].snapshot())
	}
	return out
}

// UpdateCode replaces a function's code. Environments running the old
// code finish their invocation and stop; the next invocation starts cold.
func (f *Functions) UpdateCode(name string, zip []byte) (Function, error) {
	if len(zip) == 0 {
		return Function{}, invalid("Please provide a source for function code: ZipFile is empty.")
	}
	if _, err := f.Get(name); err != nil {
		return Function{}, err
	}
	dir, sum, err := f.unpack(name, zip)
	if err != nil {
		return Function{}, err
	}
	f.mu.Lock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		f.mu.Unlock()
		return Function{}, err
	}
	fn.codeDir, fn.zip, fn.CodeSha256, fn.CodeSize = dir, zip, sum, int64(len(zip))
	retired := f.changedLocked(fn)
	f.control(EvFunction, name, fmt.Sprintf("code of %s updated (%d bytes, sha256 %s)", name, len(zip), sum))
	out := fn.snapshot()
	f.mu.Unlock()
	stopAll(retired, "the function's code changed")
	return out, nil
}

// changedLocked records a change of code or configuration: a new revision,
// and the idle environments retired (the caller stops them unlocked).
func (f *Functions) changedLocked(fn *function) []*env {
	fn.version++
	fn.LastModified = f.clock.Now().UTC()
	fn.RevisionID = f.uuidLocked()
	idle := fn.idle
	fn.idle = nil
	for _, e := range idle {
		e.idleTimer.Stop()
		delete(f.envs, e)
	}
	return idle
}

func stopAll(envs []*env, why string) {
	for _, e := range envs {
		e.stop(why)
	}
}

// UpdateConfig changes a function's configuration.
func (f *Functions) UpdateConfig(name string, in ConfigInput) (Function, error) {
	if err := checkLimits(in.Timeout, in.MemorySize, in.Runtime); err != nil {
		return Function{}, err
	}
	if in.Environment != nil {
		if err := checkEnvironment(*in.Environment); err != nil {
			return Function{}, err
		}
	}
	if in.Role != nil && !roleRE().MatchString(*in.Role) {
		return Function{}, validation(*in.Role, "role", `Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	}
	f.mu.Lock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		f.mu.Unlock()
		return Function{}, err
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&fn.Runtime, in.Runtime)
	set(&fn.Role, in.Role)
	set(&fn.Handler, in.Handler)
	set(&fn.Description, in.Description)
	if in.Timeout != nil {
		fn.Timeout = *in.Timeout
	}
	if in.MemorySize != nil {
		fn.MemorySize = *in.MemorySize
	}
	if in.Environment != nil {
		fn.Environment = maps.Clone(*in.Environment)
	}
	retired := f.changedLocked(fn)
	f.control(EvFunction, name, fmt.Sprintf("configuration of %s updated (timeout %d s, memory %d MB, %d environment variables)", name, fn.Timeout, fn.MemorySize, len(fn.Environment)))
	out := fn.snapshot()
	f.mu.Unlock()
	stopAll(retired, "the function's configuration changed")
	return out, nil
}

// Delete deletes a function: its idle environments stop at once, busy
// ones when their invocation ends. Its code stays in the state directory.
func (f *Functions) Delete(name string) error {
	f.mu.Lock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	delete(f.fns, name)
	idle := f.changedLocked(fn)
	fn.version = -1
	f.control(EvFunction, name, "deleted "+name)
	f.mu.Unlock()
	stopAll(idle, "the function was deleted")
	return nil
}

// SetTags adds or replaces tags; UntagFunction removes them.
func (f *Functions) SetTags(name string, tags map[string]string, remove []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return err
	}
	if fn.Tags == nil {
		fn.Tags = map[string]string{}
	}
	maps.Copy(fn.Tags, tags)
	for _, k := range remove {
		delete(fn.Tags, k)
	}
	return nil
}

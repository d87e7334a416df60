package functions

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// AddPermission adds a statement to a function's resource policy and
// returns the statement as JSON. The policy is stored and shown, not
// enforced: every caller may invoke every function.
func (f *Functions) AddPermission(name string, st Statement) (string, error) {
	switch {
	case st.Sid == "":
		return "", validation("", "statementId", "Member must not be null")
	case !sidRE().MatchString(st.Sid):
		return "", validation(st.Sid, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_.]+)")
	case st.Action == "":
		return "", validation("", "action", "Member must not be null")
	case !actionRE().MatchString(st.Action):
		return "", validation(st.Action, "action", `Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])`)
	case st.Principal == "":
		return "", validation("", "principal", "Member must not be null")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return "", err
	}
	for _, s := range fn.policy {
		if s.Sid == st.Sid {
			return "", conflict("The statement id (%s) provided already exists. Please specify a new statement id, or remove the existing statement.", st.Sid)
		}
	}
	fn.policy = append(fn.policy, st)
	fn.RevisionID = f.uuidLocked()
	f.control(EvPolicy, name, fmt.Sprintf("permission %s added to %s: %s for %s", st.Sid, name, st.Action, st.Principal))
	b, _ := json.Marshal(f.statementDoc(fn, st))
	return string(b), nil
}

var (
	sidRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,100}$`) })
	actionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(lambda:[*]|lambda:[a-zA-Z]+|[*])$`) })
)

// RemovePermission removes a statement by its id.
func (f *Functions) RemovePermission(name, sid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return err
	}
	for i, s := range fn.policy {
		if s.Sid == sid {
			fn.policy = append(fn.policy[:i], fn.policy[i+1:]...)
			fn.RevisionID = f.uuidLocked()
			f.control(EvPolicy, name, fmt.Sprintf("permission %s removed from %s", sid, name))
			return nil
		}
	}
	return &awsproto.Error{Code: "ResourceNotFoundException", Message: "Statement " + sid + " is not found in resource policy.", Status: 404}
}

// Policy returns a function's resource policy as JSON and its revision.
func (f *Functions) Policy(name string) (policy, revision string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return "", "", err
	}
	if len(fn.policy) == 0 {
		return "", "", &awsproto.Error{Code: "ResourceNotFoundException", Message: "The resource you requested does not exist.", Status: 404}
	}
	doc := map[string]any{"Version": "2012-10-17", "Id": "default"}
	var sts []any
	for _, s := range fn.policy {
		sts = append(sts, f.statementDoc(fn, s))
	}
	doc["Statement"] = sts
	b, _ := json.Marshal(doc)
	return string(b), fn.RevisionID, nil
}

func (f *Functions) statementDoc(fn *function, s Statement) map[string]any {
	var principal any = map[string]string{"Service": s.Principal}
	switch {
	case s.Principal == "*":
		principal = "*"
	case accountRE().MatchString(s.Principal):
		principal = map[string]string{"AWS": "arn:aws:iam::" + s.Principal + ":root"}
	case strings.HasPrefix(s.Principal, "arn:"):
		principal = map[string]string{"AWS": s.Principal}
	}
	doc := map[string]any{"Sid": s.Sid, "Effect": "Allow", "Principal": principal, "Action": s.Action, "Resource": fn.ARN}
	cond := map[string]any{}
	if s.SourceARN != "" {
		cond["ArnLike"] = map[string]string{"AWS:SourceArn": s.SourceARN}
	}
	eq := map[string]string{}
	if s.SourceAccount != "" {
		eq["AWS:SourceAccount"] = s.SourceAccount
	}
	if s.PrincipalOrgID != "" {
		eq["aws:PrincipalOrgID"] = s.PrincipalOrgID
	}
	if len(eq) > 0 {
		cond["StringEquals"] = eq
	}
	if len(cond) > 0 {
		doc["Condition"] = cond
	}
	return doc
}

var accountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{12}$`) })

// SetConcurrency sets (n ≥ 0) or removes (nil) a function's reserved
// concurrency: invocations beyond it are throttled.
func (f *Functions) SetConcurrency(name string, n *int) error {
	if n != nil && *n < 0 {
		return validation(fmt.Sprint(*n), "reservedConcurrentExecutions", "Member must have value greater than or equal to 0")
	}
	if n != nil && *n > 1000 {
		return invalid("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return err
	}
	if n == nil {
		fn.Reserved = nil
		f.control(EvPolicy, name, "reserved concurrency of "+name+" removed")
		return nil
	}
	v := *n
	fn.Reserved = &v
	f.control(EvPolicy, name, fmt.Sprintf("reserved concurrency of %s set to %d", name, v))
	return nil
}

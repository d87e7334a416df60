package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of EC2 Auto Scaling that bound the configuration.
const (
	// maxHold is the longest a lifecycle hook can hold an instance: the
	// GlobalTimeout is at most 172800 seconds.
	maxHold = 48 * time.Hour
	// maxHeartbeatTimeout is the largest HeartbeatTimeout a hook can have.
	maxHeartbeatTimeout = 2 * time.Hour
	// maxQueueName is SQS's limit on a queue name's length, and
	// maxInstanceID the length of the longest instance id (i- and 17 hex).
	maxQueueName  = 80
	maxInstanceID = 19
	// maxNameLen bounds probe and step names.
	maxNameLen = 64
)

// Validate checks every field and how fields relate, and reports every
// problem at once: the errors.Join of one *FieldError per problem, each
// formatted "path: problem; fix". The sqs block is checked only when Source
// is SourceSQS.
func (a Agent) Validate() error { return join(a.validate()) }

type validator struct{ errs []*FieldError }

func (v *validator) add(path, problem, fix string) {
	v.errs = append(v.errs, &FieldError{Path: path, Problem: problem, Fix: fix})
}

func (a Agent) validate() []*FieldError {
	v := &validator{}
	oneOf(v, "source", a.Source, SourceIMDS, SourceSQS)
	if a.IMDS.PollInterval < Duration(time.Second) {
		v.add("imds.poll_interval", fmt.Sprintf("%s is too short", a.IMDS.PollInterval), "use at least 1s")
	}
	if a.Source == SourceSQS {
		a.SQS.validate(v)
	}
	a.Launch.validate(v)
	a.Terminate.validate(v)
	oneOf(v, "on_sigterm", a.OnSIGTERM, SIGTERMExit, SIGTERMDrain)
	switch {
	case a.Paths.JournalDir == "":
		v.add("paths.journal_dir", "missing", "give a directory such as "+DefaultJournalDir)
	case strings.ContainsRune(a.Paths.JournalDir, 0):
		v.add("paths.journal_dir", "contains a NUL byte", "remove it")
	}
	a.Status.validate(v)
	oneOf(v, "log.format", a.Log.Format, LogText, LogJSON)
	oneOf(v, "log.level", a.Log.Level, LogDebug, LogInfo, LogWarn, LogError)
	a.Leader.validate(v)
	a.Traffic.validate(v)
	return v.errs
}

const sqsFix = "set exactly one of queue_url and topic_arn when source is sqs"

func (s SQS) validate(v *validator) {
	switch {
	case s.QueueURL != "" && s.TopicARN != "":
		v.add("sqs", "has both queue_url and topic_arn", sqsFix)
	case s.QueueURL == "" && s.TopicARN == "":
		v.add("sqs", "has neither queue_url nor topic_arn", sqsFix)
	}
	if s.QueueURL != "" {
		u, err := url.Parse(s.QueueURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			v.add("sqs.queue_url", fmt.Sprintf("%q is not a queue URL", s.QueueURL),
				"give the queue's URL (not its ARN), such as https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle")
		}
	}
	if s.TopicARN != "" {
		parts := strings.SplitN(s.TopicARN, ":", 6)
		if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "sns" || parts[5] == "" {
			v.add("sqs.topic_arn", fmt.Sprintf("%q is not an SNS topic ARN", s.TopicARN),
				"give the hook's topic, such as arn:aws:sns:us-east-1:123456789012:lifecycle")
		}
		switch {
		case !queueNameChars(s.QueuePrefix):
			v.add("sqs.queue_prefix", fmt.Sprintf("%q has characters SQS does not allow in a queue name", s.QueuePrefix),
				"use letters, digits, '-' and '_'")
		case len(s.QueuePrefix) > maxQueueName-maxInstanceID:
			v.add("sqs.queue_prefix", fmt.Sprintf("is %d characters long", len(s.QueuePrefix)),
				fmt.Sprintf("use at most %d, so that the prefix and an instance id fit SQS's %d", maxQueueName-maxInstanceID, maxQueueName))
		}
	}
	wholeSeconds(v, "sqs.wait_time", s.WaitTime, time.Second, 20*time.Second)
	wholeSeconds(v, "sqs.visibility_timeout", s.VisibilityTimeout, time.Second, 12*time.Hour)
}

// wholeSeconds checks a duration SQS takes in whole seconds, from lo to hi.
func wholeSeconds(v *validator, path string, d Duration, lo, hi time.Duration) {
	rng := fmt.Sprintf("use %s to %s", Duration(lo), Duration(hi))
	switch {
	case time.Duration(d) < lo || time.Duration(d) > hi:
		v.add(path, fmt.Sprintf("%s is out of range", d), rng)
	case time.Duration(d)%time.Second != 0:
		v.add(path, fmt.Sprintf("%s is not a whole number of seconds", d), "SQS counts in whole seconds; "+rng)
	}
}

func queueNameChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (l Launch) validate(v *validator) {
	hookName(v, "launch.hook", l.Hook, "launch")
	names := map[string]string{}
	for i, p := range l.Probes {
		pp := fmt.Sprintf("launch.probes[%d]", i)
		uniqueName(v, pp, p.Name, "probe", "web", names)
		var kinds []string
		if p.HTTP != nil {
			kinds = append(kinds, "http")
			p.HTTP.validate(v, pp+".http", l.Timeout)
		}
		if p.TCP != nil {
			kinds = append(kinds, "tcp")
			p.TCP.validate(v, pp+".tcp", l.Timeout)
		}
		if p.Command != nil {
			kinds = append(kinds, "command")
			p.Command.validate(v, pp+".command", l.Timeout)
		}
		const fix = "a probe has exactly one of http, tcp, command"
		switch len(kinds) {
		case 0:
			v.add(pp, "has none of http, tcp, command", fix)
		case 2:
			v.add(pp, fmt.Sprintf("has both %s and %s", kinds[0], kinds[1]), fix)
		case 3:
			v.add(pp, "has http, tcp and command", fix)
		}
	}
	if l.ConsecutivePasses < 1 {
		v.add("launch.consecutive_passes", fmt.Sprintf("%d is too few", l.ConsecutivePasses), "use 1 or more")
	}
	positive(v, "launch.interval", l.Interval, "use an interval such as 2s")
	positive(v, "launch.timeout", l.Timeout, "use a timeout such as 10m")
	holdable(v, "launch.timeout", l.Timeout)
	// The first pass counts at once, each further one an interval later.
	if len(l.Probes) > 0 && l.Interval > 0 && l.Timeout > 0 && l.ConsecutivePasses > 1 &&
		int64(l.ConsecutivePasses-1) > int64((l.Timeout-1)/l.Interval) {
		v.add("launch.timeout", fmt.Sprintf("%s leaves no time for %d consecutive passes %s apart", l.Timeout, l.ConsecutivePasses, l.Interval),
			"raise launch.timeout, or lower launch.consecutive_passes or launch.interval")
	}
	oneOf(v, "launch.on_timeout", l.OnTimeout, TimeoutAbandon, TimeoutContinue)
	oneOf(v, "launch.on_fatal", l.OnFatal, FatalAbandon, FatalWait)
}

func (h HTTPProbe) validate(v *validator, path string, launchTimeout Duration) {
	const example = "http://127.0.0.1:8080/healthz"
	if h.URL == "" {
		v.add(path+".url", "missing", "give the URL to check, such as "+example)
	} else if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path+".url", fmt.Sprintf("%q is not an http or https URL", h.URL), "give a URL such as "+example)
	}
	if h.Status < 100 || h.Status > 599 {
		v.add(path+".status", fmt.Sprintf("%d is not an HTTP status code", h.Status), "use 100 to 599, such as 200")
	}
	probeTimeout(v, path+".timeout", h.Timeout, launchTimeout, "2s")
}

func (t TCPProbe) validate(v *validator, path string, launchTimeout Duration) {
	const fix = "give host:port, such as 127.0.0.1:5432"
	if t.Address == "" {
		v.add(path+".address", "missing", fix)
	} else if _, port, err := net.SplitHostPort(t.Address); err != nil || !validPort(port) {
		v.add(path+".address", fmt.Sprintf("%q is not host:port", t.Address), fix)
	}
	probeTimeout(v, path+".timeout", t.Timeout, launchTimeout, "2s")
}

func (c CommandProbe) validate(v *validator, path string, launchTimeout Duration) {
	argv(v, path+".argv", c.Argv, `["/usr/local/bin/check"]`)
	probeTimeout(v, path+".timeout", c.Timeout, launchTimeout, "30s")
	for i, code := range c.FatalExitCodes {
		if code < 1 || code > 255 {
			v.add(fmt.Sprintf("%s.fatal_exit_codes[%d]", path, i), fmt.Sprintf("%d is not a fatal exit code", code), "use 1 to 255 (0 is a pass)")
		}
	}
}

func probeTimeout(v *validator, path string, d, launchTimeout Duration, example string) {
	positive(v, path, d, "use a timeout such as "+example)
	if launchTimeout > 0 && d > launchTimeout {
		v.add(path, fmt.Sprintf("%s is longer than launch.timeout (%s)", d, launchTimeout), "make it shorter than launch.timeout")
	}
}

func (t Terminate) validate(v *validator) {
	hookName(v, "terminate.hook", t.Hook, "terminate")
	const hbFix = "use 0s to send one every HeartbeatTimeout/2 of the hook"
	switch {
	case t.HeartbeatInterval < 0:
		v.add("terminate.heartbeat_interval", fmt.Sprintf("%s is negative", t.HeartbeatInterval), hbFix)
	case time.Duration(t.HeartbeatInterval) >= maxHeartbeatTimeout:
		v.add("terminate.heartbeat_interval", fmt.Sprintf("%s is not shorter than any hook's HeartbeatTimeout (at most %s)", t.HeartbeatInterval, Duration(maxHeartbeatTimeout)), hbFix)
	}
	oneOf(v, "terminate.result", t.Result, ResultContinue, ResultAbandon)
	names := map[string]string{}
	var total time.Duration
	for i, s := range t.Steps {
		sp := fmt.Sprintf("terminate.steps[%d]", i)
		uniqueName(v, sp, s.Name, "step", "drain", names)
		argv(v, sp+".command", s.Command, `["/usr/local/bin/drain", "--wait"]`)
		switch {
		case s.Timeout == 0:
			v.add(sp+".timeout", "missing", "give each step a timeout such as 5m")
		case s.Timeout < 0:
			v.add(sp+".timeout", fmt.Sprintf("%s is negative", s.Timeout), "give each step a timeout such as 5m")
		case time.Duration(s.Timeout) > maxHold:
			holdable(v, sp+".timeout", s.Timeout)
		default:
			total = min(total+time.Duration(s.Timeout), maxHold+1) // saturates: no overflow
		}
		for _, k := range slices.Sorted(maps.Keys(s.Env)) {
			kp := keyPath(sp+".env", k)
			switch {
			case k == "" || strings.ContainsAny(k, "=\x00"):
				v.add(kp, "is not an environment variable name", "use letters, digits and _")
			case strings.HasPrefix(k, "LIFEGUARD_"):
				v.add(kp, "LIFEGUARD_* names are reserved for the variables lifeguard sets", "rename the variable")
			}
			if strings.ContainsRune(s.Env[k], 0) {
				v.add(kp, "contains a NUL byte", "remove it")
			}
		}
		oneOf(v, sp+".on_failure", s.OnFailure, FailureContinue, FailureAbandon)
		oneOf(v, sp+".on_interrupt", s.OnInterrupt, InterruptRerun, InterruptSkip)
	}
	if total > maxHold {
		v.add("terminate.steps", fmt.Sprintf("the step timeouts add up to more than %s, the most a lifecycle hook can hold an instance", Duration(maxHold)), "shorten them")
	}
}

func (s Status) validate(v *validator) {
	const fix = "give host:port, such as " + DefaultStatusListen
	if s.Listen == "" {
		v.add("status.listen", "missing", fix)
		return
	}
	host, port, err := net.SplitHostPort(s.Listen)
	// Port 0 picks a free port (the agent logs the address it got), so many
	// agents can share one host.
	if err != nil || (port != "0" && !validPort(port)) {
		v.add("status.listen", fmt.Sprintf("%q is not host:port", s.Listen), fix)
		return
	}
	if !s.AllowNonLoopback && !loopback(host) {
		v.add("status.listen", fmt.Sprintf("%q is not a loopback address", s.Listen), "use 127.0.0.1:PORT or set status.allow_non_loopback: true")
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && p == strconv.Itoa(n)
}

// oneOf checks an enumerated value; a value in the wrong case gets its
// correct spelling as the fix.
func oneOf[T ~string](v *validator, path string, got T, allowed ...T) {
	var names []string
	fix := ""
	for _, a := range allowed {
		if got == a {
			return
		}
		if strings.EqualFold(string(got), string(a)) {
			fix = "write " + string(a)
		}
		names = append(names, string(a))
	}
	v.add(path, fmt.Sprintf("%q is not one of %s", got, strings.Join(names, ", ")), fix)
}

func positive(v *validator, path string, d Duration, fix string) {
	switch {
	case d == 0:
		v.add(path, "must be more than 0s", fix)
	case d < 0:
		v.add(path, fmt.Sprintf("%s is negative", d), fix)
	}
}

// holdable checks that a wait fits in the longest a hook can hold an instance.
func holdable(v *validator, path string, d Duration) {
	if time.Duration(d) > maxHold {
		v.add(path, fmt.Sprintf("%s is longer than %s, the most a lifecycle hook can hold an instance", d, Duration(maxHold)), "use 48h or less")
	}
}

// hookName checks a lifecycle hook name as PutLifecycleHook does; "" means
// every hook of the transition.
func hookName(v *validator, path, name, transition string) {
	if name == "" {
		return
	}
	ok := len(name) <= 255
	for _, r := range name {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '/')
	}
	if !ok {
		v.add(path, fmt.Sprintf("%q is not a lifecycle hook name", name),
			fmt.Sprintf(`use up to 255 letters, digits, '-', '_' and '/', or "" for every %s hook`, transition))
	}
}

// uniqueName checks the name of the probe or step at path against the names
// seen so far (name → path).
func uniqueName(v *validator, path, name, what, example string, seen map[string]string) {
	p := path + ".name"
	if name == "" {
		v.add(p, "missing", fmt.Sprintf("give each %s a name such as %s", what, example))
		return
	}
	ok := len(name) <= maxNameLen
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		ok = ok && (alnum || i > 0 && (r == '-' || r == '_' || r == '.'))
	}
	if !ok {
		v.add(p, fmt.Sprintf("%q is not a valid name", name),
			fmt.Sprintf("start with a letter or digit, then use letters, digits, '-', '_' and '.', at most %d in all", maxNameLen))
		return
	}
	if first, dup := seen[name]; dup {
		v.add(p, fmt.Sprintf("%q is also the name of %s", name, first), fmt.Sprintf("give each %s its own name", what))
		return
	}
	seen[name] = path
}

// argv checks a command line: not empty, a program, no NUL bytes.
func argv(v *validator, path string, args []string, example string) {
	if len(args) == 0 {
		v.add(path, "empty", fmt.Sprintf(`give the command as a list of arguments, such as %s (no shell unless you write ["sh", "-c", "…"])`, example))
		return
	}
	if args[0] == "" {
		v.add(path+"[0]", "empty", "give the program to run")
	}
	for i, a := range args {
		if strings.ContainsRune(a, 0) {
			v.add(fmt.Sprintf("%s[%d]", path, i), "contains a NUL byte", "remove it")
		}
	}
}

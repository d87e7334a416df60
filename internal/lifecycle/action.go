package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Transition is the instance transition a lifecycle hook pauses.
type Transition string

// The two transitions a lifecycle hook can be put on.
const (
	TransitionLaunching   Transition = "autoscaling:EC2_INSTANCE_LAUNCHING"
	TransitionTerminating Transition = "autoscaling:EC2_INSTANCE_TERMINATING"
)

// Valid reports whether t is one of the two hook transitions.
func (t Transition) Valid() bool { return t == TransitionLaunching || t == TransitionTerminating }

// Result is the outcome sent when completing a lifecycle action.
type Result string

// The two results CompleteLifecycleAction accepts.
const (
	Continue Result = "CONTINUE"
	Abandon  Result = "ABANDON"
)

// Valid reports whether r is CONTINUE or ABANDON.
func (r Result) Valid() bool { return r == Continue || r == Abandon }

// Reason says how the agent learned that an action is pending.
type Reason string

// Reasons an action is handled.
const (
	ReasonLifecycleHook    Reason = "lifecycle-hook"    // IMDS target state, the hook's notification, or DescribeAutoScalingInstances
	ReasonSpotInterruption Reason = "spot-interruption" // a spot interruption notice
	ReasonSIGTERM          Reason = "sigterm"           // SIGTERM with on_sigterm: drain
)

// MaxGlobalTimeout is the longest any lifecycle action can be kept alive by
// heartbeats (172800 s).
const MaxGlobalTimeout = 48 * time.Hour

// globalTimeoutFactor is how many heartbeat timeouts make up the global
// timeout, before the MaxGlobalTimeout cap.
const globalTimeoutFactor = 100

// minHeartbeatTimeout is the shortest HeartbeatTimeout AWS accepts; it sizes
// the heartbeat interval when the hook's timeout is unknown.
const minHeartbeatTimeout = 30 * time.Second

// Hook is the part of a lifecycle hook's definition (DescribeLifecycleHooks)
// the agent needs.
type Hook struct {
	Name                 string
	Transition           Transition
	HeartbeatTimeout     time.Duration // AWS: 30 s to 7200 s, default 3600 s
	DefaultResult        Result        // applied by AWS on timeout; AWS's default is ABANDON
	NotificationMetadata string
}

// GlobalTimeout returns the longest the hook's actions can be kept pending
// by heartbeats: min(100 × HeartbeatTimeout, 48 h). It is 0 when
// HeartbeatTimeout is not positive.
func (h Hook) GlobalTimeout() time.Duration {
	switch {
	case h.HeartbeatTimeout <= 0:
		return 0
	case h.HeartbeatTimeout >= MaxGlobalTimeout/globalTimeoutFactor:
		return MaxGlobalTimeout
	default:
		return globalTimeoutFactor * h.HeartbeatTimeout
	}
}

// HeartbeatInterval returns the interval between heartbeats for actions of
// h: configured when it is positive and shorter than h.HeartbeatTimeout
// (a longer one would let the action expire between heartbeats, so it is
// ignored), else HeartbeatTimeout/2, or 15 s (half AWS's minimum timeout)
// when the hook's timeout is unknown. The result is always positive.
func HeartbeatInterval(h Hook, configured time.Duration) time.Duration {
	ht := h.HeartbeatTimeout
	switch {
	case configured > 0 && (ht <= 0 || configured < ht):
		return configured
	case ht <= 0:
		return minHeartbeatTimeout / 2
	case ht/2 > 0:
		return ht / 2
	default:
		return ht
	}
}

// ErrNoActiveAction means Auto Scaling has no such pending lifecycle action:
// it was completed (by this agent or anyone else), timed out, or never
// existed. internal/awscloud maps AWS's "No active Lifecycle Action found
// with …" ValidationError to it.
var ErrNoActiveAction = errors.New("no active lifecycle action")

// Action is one pending lifecycle action of this instance for one hook.
type Action struct {
	InstanceID string
	Group      string
	Hook       Hook
	// Token is the LifecycleActionToken; "" when the action was learned from
	// IMDS or DescribeAutoScalingInstances (the Completer then identifies it
	// by instance id).
	Token string
	// Seen is when the agent first learned of the action. Deadline counts
	// from it; the Executor keeps the first Seen it journaled.
	Seen   time.Time
	Reason Reason
	// Unverified says that only a notification (a queue message) told of
	// the action, which a stale, repeated or misdirected message can do
	// for an instance that is not in its wait state. The Executor then
	// sends the first heartbeat at once and starts no step before a
	// heartbeat has succeeded: Auto Scaling accepts one only for a pending
	// action.
	Unverified bool
}

// Key identifies the action in the journal.
func (a Action) Key() Key {
	return Key{Instance: a.InstanceID, Transition: a.Hook.Transition, Hook: a.Hook.Name}
}

// Validate checks the fields the Executor relies on.
func (a Action) Validate() error {
	switch {
	case a.InstanceID == "":
		return errors.New("lifecycle action has no instance id")
	case a.Hook.Name == "":
		return fmt.Errorf("lifecycle action of %s has no hook name", a.InstanceID)
	case !a.Hook.Transition.Valid():
		return fmt.Errorf("lifecycle action of %s for hook %s: transition %q is neither %s nor %s",
			a.InstanceID, a.Hook.Name, a.Hook.Transition, TransitionLaunching, TransitionTerminating)
	case a.Hook.HeartbeatTimeout <= 0:
		return fmt.Errorf("lifecycle action of %s for hook %s: heartbeat timeout %v is not positive (read it from DescribeLifecycleHooks)",
			a.InstanceID, a.Hook.Name, a.Hook.HeartbeatTimeout)
	}
	return nil
}

// Deadline returns when the action expires even if heartbeats keep coming:
// a.Seen + a.Hook.GlobalTimeout(). Since Seen is no later than the moment
// Auto Scaling started the action, it is never later than AWS's own limit.
func Deadline(a Action) time.Time { return a.Seen.Add(a.Hook.GlobalTimeout()) }

// Key identifies a lifecycle action: one instance, one transition, one hook.
// At most one action is pending per Key at a time, though a Key can see
// several actions over time (warm pools move an instance in and out).
type Key struct {
	Instance   string     `json:"instance"`
	Transition Transition `json:"transition"`
	Hook       string     `json:"hook"`
}

// maxName bounds the names String returns, well below the usual 255-byte
// file name limit so suffixes still fit.
const maxName = 160

// String returns the key as a file name stem: only ASCII letters, digits,
// '-', '_' and '.'; distinct keys give distinct names. The two known
// transitions appear as "launching" and "terminating", e.g.
// "i-0123456789abcdef0.terminating.drain_2fhook". Names longer than 160
// bytes are shortened and end in a hash of the full name.
func (k Key) String() string {
	var b strings.Builder
	escape(&b, k.Instance)
	b.WriteByte('.')
	switch k.Transition {
	case TransitionLaunching:
		b.WriteString("launching")
	case TransitionTerminating:
		b.WriteString("terminating")
	default:
		// "_x" never appears in an escaped string ('x' is not a hex digit),
		// so an unknown transition cannot collide with a known one.
		b.WriteString("_x")
		escape(&b, string(k.Transition))
	}
	b.WriteByte('.')
	escape(&b, k.Hook)
	return shorten(b.String())
}

// StepID names one step of one action for the StepRunner.
type StepID struct {
	Key Key
	// Action tells apart successive actions with the same Key (Record.ID).
	Action string
	Step   string
}

// String returns the id as a file name stem, in the same alphabet and with
// the same guarantees as Key.String.
func (id StepID) String() string {
	var b strings.Builder
	b.WriteString(id.Key.String())
	b.WriteByte('.')
	escape(&b, id.Action)
	b.WriteByte('.')
	escape(&b, id.Step)
	return shorten(b.String())
}

// escape writes s keeping ASCII letters, digits and '-', and writing every
// other byte as '_' and two lowercase hex digits; '.' never appears in the
// output, so it can separate fields.
func escape(b *strings.Builder, s string) {
	const hexDigits = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
}

// shorten keeps names up to maxName bytes; longer ones become a prefix plus
// "_h" and a hash of the whole name ("_h" never appears in an escaped name).
func shorten(name string) string {
	if len(name) <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_h" + hex.EncodeToString(sum[:16])
	return name[:maxName-len(suffix)] + suffix
}

package lifecycle

import (
	"fmt"
	"time"
)

// Progress is what the journal says about one action and its plan, in the
// terms its callers ask: did the plan end, which step is next, was the
// action completed.
type Progress struct {
	// Seen is when the action was first seen (Deadline counts from it);
	// Token the LifecycleActionToken journaled for it ("" when unknown).
	Seen  time.Time
	Token string
	// Done counts the steps journaled finished or skipped; Started the
	// steps journaled at all (started, finished or skipped).
	Done, Started int
	// Next names the step the Executor runs (or resumes) next; "" when the
	// plan has ended.
	Next string
	// Ended says the plan has run: every step is done, a failed step with
	// FailAbandon stopped it, or a result was decided.
	Ended bool
	// Decided is the result decided for the action ("" until the plan
	// ended and the result was journaled).
	Decided Result
	// Completed says the action needs nothing more: completed with Decided,
	// or, when Gone, Auto Scaling no longer had it; CompletedAt says when.
	Completed   bool
	Gone        bool
	CompletedAt time.Time
}

// Progress returns the record's progress through plan p (the plan the
// record's action runs).
func (r Record) Progress(p Plan) Progress {
	pr := Progress{
		Seen: r.Seen, Token: r.Token, Decided: r.Completing,
		Completed: r.Completed, Gone: r.Gone, CompletedAt: r.CompletedAt,
	}
	pr.Started = len(r.Steps)
	for _, s := range r.Steps {
		if s.State == StepFinished || s.State == StepSkipped {
			pr.Done++
		}
	}
	if r.Completing != "" || r.Completed {
		pr.Ended = true
		return pr
	}
	for _, s := range p.Steps {
		i := r.step(s.Name)
		if i < 0 {
			pr.Next = s.Name
			return pr
		}
		switch sr := r.Steps[i]; sr.State {
		case StepSkipped:
		case StepFinished:
			if sr.failed() && s.OnFailure == FailAbandon {
				pr.Ended = true
				return pr
			}
		default:
			pr.Next = s.Name
			return pr
		}
	}
	pr.Ended = true
	return pr
}

// Progress returns the progress of k's action through plan p; ok is false
// when the journal has no record of it.
func (j *Journal) Progress(k Key, p Plan) (pr Progress, ok bool, err error) {
	r, ok, err := j.Load(k)
	if err != nil || !ok {
		return Progress{}, ok, err
	}
	return r.Progress(p), true, nil
}

// Forget removes the records of instance's actions of transition t, so
// that a later action with the same key is not taken for a finished one
// (actions learned without a token cannot be told apart). It returns the
// keys it removed, also when it fails part way.
func (j *Journal) Forget(instance string, t Transition) ([]Key, error) {
	recs, err := j.List()
	if err != nil {
		return nil, err
	}
	var removed []Key
	for _, r := range recs {
		if r.Key.Instance != instance || r.Key.Transition != t {
			continue
		}
		if err := j.Remove(r.Key); err != nil {
			return removed, fmt.Errorf("forget %s actions of %s: %w", t, instance, err)
		}
		removed = append(removed, r.Key)
	}
	return removed, nil
}

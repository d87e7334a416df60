// Package lease elects one leader per group with a lease held in a shared
// store, and hands leadership to the work as a context.
//
// A group has one Record: its holder, a fencing token that strictly
// increases with every new holder and is never reset (release marks the
// lease expired, it never deletes the record), the lease duration and a
// record version that changes on every write. Writes are conditional on
// the version (Store), so at most one contender wins each change.
//
// Expiry is judged only from times observed locally (Decide): a follower
// takes over after it has seen one record version unchanged for a full
// lease on its own clock, and a leader stops leading — cancels the work's
// context and waits for the work to return — before its lease could
// expire on any follower's clock: at the send time of its last confirmed
// write plus Lease minus Margin. Clock offsets between hosts therefore play
// no part; only the rates of their clocks do, and Margin covers them.
//
// Elector runs the election for one instance: it campaigns while the
// instance is eligible (InService and ready), renews while it leads, steps
// down when it can no longer confirm its lease, hands off on Resign, keeps
// a membership item in a Roster (presence) and tells observers of every
// change. Package leasetest holds an in-memory Store and Roster with fault
// injection, and the conformance tests every implementation must pass;
// internal/awscloud implements both on DynamoDB. This package never
// imports the AWS SDK; time comes from package time and tests run under
// testing/synctest.
package lease

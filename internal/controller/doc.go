// Package controller is lifeguard's group-wide controller: it keeps
// exactly one leader tag in each opted-in Auto Scaling group (tag
// leadership, the seed's interface without its failures) and completes
// lifecycle actions whose agent is dead (the orphan reaper).
//
// Decisions are pure functions (Decide, Reap) over a snapshot of a group;
// Controller reads snapshots and applies decisions through small
// interfaces implemented by internal/awscloud. Triggers come from Auto
// Scaling notifications, EventBridge events, SQS messages carrying either,
// and a periodic reconcile (ParseEvent turns each into the groups to look
// at); every trigger leads to the same reconcile of the whole group, so
// duplicate, late and out-of-order events are harmless.
package controller

// Package awscloud is the only package that imports the AWS SDK. It
// implements the domain packages' small interfaces (lifecycle.Completer,
// the agent's Metadata and Group) over aws-sdk-go-v2 and turns AWS errors
// into the domain's own (AWS's "No active Lifecycle Action found …" becomes
// lifecycle.ErrNoActiveAction). Endpoints come from the SDK's standard
// configuration (AWS_ENDPOINT_URL, AWS_EC2_METADATA_SERVICE_ENDPOINT), so
// pointing it at the sandbox is configuration, never a code path.
//
// A Session's clients count every call (CallCounter) and hand net/http
// request bodies of their own (OwnRequestBodies): without that, a server
// that answers before net/http's last read of the body (often one on the
// same host) makes a successful call with a response larger than 4 KiB fail
// with "use of closed network connection" and be retried after up to a
// second.
package awscloud

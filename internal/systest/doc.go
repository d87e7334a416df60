// Package systest holds lifeguard's end-to-end tests: the built binary and
// the sandbox over HTTP, driven by the real AWS SDK, the AWS CLIs and boto3,
// with differential checks against moto_server. It has no code of its own.
package systest

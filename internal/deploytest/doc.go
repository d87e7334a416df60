// Package deploytest holds the tests of the deploy kits in deploy/: the
// CloudFormation template (cfn-lint), the Terraform module and its example
// (parsed, every reference resolved), the Elastic Beanstalk extension and the
// Amazon Linux 2023 user data (their agent configurations validated), and
// that every kit's IAM grants what `lifeguard iam-policy` prints for the
// same features. It has no code of its own.
package deploytest

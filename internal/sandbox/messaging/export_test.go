package messaging

import "regexp"

// EBNextFire exposes the schedule arithmetic to the package's tests.
var EBNextFire = ebNextFire

// Patterns are the package's regular expressions, compiled on first use.
var Patterns = []func() *regexp.Regexp{
	snsTopicNameRE, snsFifoNameRE, snsFeedbackAttrRE, snsLambdaARNRE, snsQueueARNRE,
	ebRuleNamePattern, ebBusNamePattern, ebTargetIDPattern, ebPathKeyPattern, ebRateExpression, ebCronExpression,
}

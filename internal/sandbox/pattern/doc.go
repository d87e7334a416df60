// Package pattern holds the sandbox's pure matchers: SNS subscription
// filter policies (filter.go), EventBridge event patterns (event.go) and
// the paths and templates of EventBridge input transformers (input.go).
//
// Nothing here touches sandbox state: every function's result depends only
// on its arguments, and compiled patterns are immutable and safe for
// concurrent use. The state owner (package messaging) compiles a pattern
// when a rule or subscription is put and matches each event against it.
package pattern

// Attribute is an SQS or SNS message attribute as filter policies read it.
type Attribute struct {
	DataType    string // String, Number, Binary, optionally with a ".custom" suffix
	StringValue string
	BinaryValue []byte
}

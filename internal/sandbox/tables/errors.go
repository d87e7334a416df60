package tables

import "fmt"

// Error codes the owner returns, as AWS names them.
const (
	CodeValidation        = "ValidationException"
	CodeResourceNotFound  = "ResourceNotFoundException"
	CodeResourceInUse     = "ResourceInUseException"
	CodeConditionalFailed = "ConditionalCheckFailedException"
	CodeLimitExceeded     = "LimitExceededException"
)

// Error is a DynamoDB API error: AWS's code and message. A failed
// condition may carry the item as it was (ReturnValuesOnConditionCheckFailure
// ALL_OLD).
type Error struct {
	Code    string
	Message string
	Item    Item
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func validationf(format string, args ...any) *Error {
	return &Error{Code: CodeValidation, Message: fmt.Sprintf(format, args...)}
}

// notFound is the item operations' ResourceNotFoundException.
func notFound() *Error {
	return &Error{Code: CodeResourceNotFound, Message: "Requested resource not found"}
}

// tableNotFound is the table operations' ResourceNotFoundException.
func tableNotFound(name string) *Error {
	return &Error{Code: CodeResourceNotFound, Message: "Requested resource not found: Table: " + name + " not found"}
}

func conditionFailed(old Item) *Error {
	return &Error{Code: CodeConditionalFailed, Message: "The conditional request failed", Item: old}
}

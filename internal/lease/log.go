package lease

// Attribute keys of the package's log records (STYLE rule 12).
const (
	keyInstance = "instance"
	keyGroup    = "group"
	keyToken    = "token"
	keyHolder   = "holder"
	keyNext     = "next"
	keyReason   = "reason"
	keyDeadline = "deadline"
	keyErr      = "err"
)

package awsproto

import (
	"encoding/json"
	"net/http"
)

// Content types of the JSON protocols.
const (
	JSON10 = "application/x-amz-json-1.0"
	JSON11 = "application/x-amz-json-1.1"
)

// WriteJSON writes an awsJson success response (200). A nil v writes {}.
func WriteJSON(w http.ResponseWriter, contentType, requestID string, v any) {
	body := []byte("{}")
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			WriteJSONError(w, "com.amazon.coral.service", contentType, requestID, Internal(err))
			return
		}
		body = b
	}
	writeBody(w, http.StatusOK, contentType, requestID, body)
}

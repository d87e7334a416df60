package awsproto

import (
	"encoding/xml"
	"time"
)

// Members is an awsquery list: it always marshals its wrapper element, with
// one <member> child per element, so an empty list reads <Name/> as AWS
// sends it (the SDK then decodes an empty, non-nil slice).
type Members[T any] []T

// MarshalXML writes <Name><member>…</member>…</Name>.
func (m Members[T]) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return marshalList(e, start, "member", m)
}

// Items is an ec2query list: <nameSet><item>…</item></nameSet>.
type Items[T any] []T

// MarshalXML writes <nameSet><item>…</item>…</nameSet>.
func (m Items[T]) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return marshalList(e, start, "item", m)
}

func marshalList[T any](e *xml.Encoder, start xml.StartElement, child string, elems []T) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for i := range elems {
		if err := e.EncodeElement(elems[i], xml.StartElement{Name: xml.Name{Local: child}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// Time marshals as AWS's ISO-8601 form with milliseconds, in UTC.
type Time time.Time

// TimeFormat is how AWS writes timestamps in XML and notifications.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// MarshalXML writes the time as 2024-05-01T10:00:00.123Z.
func (t Time) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return e.EncodeElement(time.Time(t).UTC().Format(TimeFormat), start)
}

// TimePtr converts a time to *Time, nil for the zero time (omitted).
func TimePtr(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	at := Time(t)
	return &at
}

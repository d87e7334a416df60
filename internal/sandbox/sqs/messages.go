package sqs

import (
	"encoding/base64"
	"encoding/xml"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

// attrValue is a MessageAttributeValue as JSON carries it (BinaryValue in
// base64, which encoding/json does for []byte).
type attrValue struct {
	DataType         string   `json:"DataType"`
	StringValue      string   `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

// queryAttrs reads flattened message attributes: <name>.N.Name and
// <name>.N.Value.DataType / .StringValue / .BinaryValue.
func queryAttrs(p awsproto.Params, name string) (map[string]attrValue, error) {
	entries := p.Flat(name)
	if entries == nil {
		return nil, nil
	}
	out := make(map[string]attrValue, len(entries))
	for _, e := range entries {
		v := e.Sub("Value")
		a := attrValue{DataType: v.String("DataType"), StringValue: v.String("StringValue")}
		if s, ok := v.Optional("BinaryValue"); ok {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, invalidValue(name+".Value.BinaryValue", s, "Must be base64.")
			}
			a.BinaryValue = b
		}
		// Reserved by SQS: kept only so that brokerAttrs refuses them.
		a.StringListValues = v.FlatStrings("StringListValue")
		if v.Flat("BinaryListValue") != nil {
			a.BinaryListValues = [][]byte{nil}
		}
		out[e.String("Name")] = a
	}
	return out, nil
}

// brokerAttrs converts wire attributes for the broker.
func brokerAttrs(m map[string]attrValue) (map[string]messaging.MessageAttribute, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]messaging.MessageAttribute, len(m))
	for name, a := range m {
		if len(a.StringListValues) > 0 || len(a.BinaryListValues) > 0 {
			return nil, awsproto.Errorf("InvalidParameterValue", "Message attribute '%s': StringListValues and BinaryListValues are reserved by SQS and not modelled by the lifeguard sandbox.", name)
		}
		out[name] = messaging.MessageAttribute{DataType: a.DataType, StringValue: a.StringValue, BinaryValue: a.BinaryValue}
	}
	return out, nil
}

func wireAttrs(m map[string]messaging.MessageAttribute) map[string]attrValue {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]attrValue, len(m))
	for name, a := range m {
		out[name] = attrValue{DataType: a.DataType, StringValue: a.StringValue, BinaryValue: a.BinaryValue}
	}
	return out
}

// messageFields are the members SendMessage and a SendMessageBatch entry
// share.
type messageFields struct {
	MessageBody             body
	DelaySeconds            *int
	MessageAttributes       map[string]attrValue
	MessageSystemAttributes map[string]attrValue
	MessageDeduplicationId  string
	MessageGroupId          string
}

func messageFieldsQuery(p awsproto.Params) (messageFields, error) {
	delay, err := optInt(p, "DelaySeconds")
	if err != nil {
		return messageFields{}, err
	}
	attrs, err := queryAttrs(p, "MessageAttribute")
	if err != nil {
		return messageFields{}, err
	}
	sys, err := queryAttrs(p, "MessageSystemAttribute")
	if err != nil {
		return messageFields{}, err
	}
	return messageFields{
		MessageBody: body(p.String("MessageBody")), DelaySeconds: delay,
		MessageAttributes: attrs, MessageSystemAttributes: sys,
		MessageDeduplicationId: p.String("MessageDeduplicationId"), MessageGroupId: p.String("MessageGroupId"),
	}, nil
}

func (f messageFields) input() (messaging.SendMessageInput, error) {
	attrs, err := brokerAttrs(f.MessageAttributes)
	if err != nil {
		return messaging.SendMessageInput{}, err
	}
	sys, err := brokerAttrs(f.MessageSystemAttributes)
	if err != nil {
		return messaging.SendMessageInput{}, err
	}
	return messaging.SendMessageInput{
		Body: string(f.MessageBody), DelaySeconds: f.DelaySeconds, Attributes: attrs, SystemAttributes: sys,
		GroupID: f.MessageGroupId, DedupID: f.MessageDeduplicationId,
	}, nil
}

// SendMessage ---------------------------------------------------------------------

type sendMessageIn struct {
	QueueUrl string
	messageFields
}

func sendMessageQuery(p awsproto.Params) (sendMessageIn, error) {
	f, err := messageFieldsQuery(p)
	return sendMessageIn{QueueUrl: p.String("QueueUrl"), messageFields: f}, err
}

type sentOut struct {
	MD5OfMessageBody             string `json:"MD5OfMessageBody" xml:"MD5OfMessageBody"`
	MD5OfMessageAttributes       string `json:"MD5OfMessageAttributes,omitempty" xml:"MD5OfMessageAttributes,omitempty"`
	MD5OfMessageSystemAttributes string `json:"MD5OfMessageSystemAttributes,omitempty" xml:"MD5OfMessageSystemAttributes,omitempty"`
	MessageId                    string `json:"MessageId" xml:"MessageId"`
	SequenceNumber               string `json:"SequenceNumber,omitempty" xml:"SequenceNumber,omitempty"`
}

func sent(s messaging.SentMessage) sentOut {
	return sentOut{s.MD5OfMessageBody, s.MD5OfMessageAttributes, s.MD5OfMessageSystemAttributes, s.MessageID, s.SequenceNumber}
}

func (h *Handler) sendMessage(c call, in sendMessageIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	msg, err := in.input()
	if err != nil {
		return nil, err
	}
	s, err := h.q.SendMessage(name, msg)
	if err != nil {
		return nil, err
	}
	return same{sent(s)}, nil
}

// Batches ---------------------------------------------------------------------------

// batchError is a failed batch entry (BatchResultErrorEntry).
type batchError struct {
	Id          string `json:"Id" xml:"Id"`
	SenderFault bool   `json:"SenderFault" xml:"SenderFault"`
	Code        string `json:"Code" xml:"Code"`
	Message     string `json:"Message" xml:"Message"`
}

func newBatchError(id string, e *awsproto.Error) batchError {
	return batchError{Id: id, SenderFault: !e.Receiver, Code: e.Code, Message: e.Message}
}

// batchOut is a batch operation's result: successful entries (S) and
// failed ones; in XML each list is flattened under its own element name.
type batchOut[S any] struct {
	xmlName    string
	Successful []S
	Failed     []batchError
}

func (o batchOut[S]) jsonBody() any {
	return struct {
		Successful []S          `json:"Successful"`
		Failed     []batchError `json:"Failed"`
	}{append([]S{}, o.Successful...), append([]batchError{}, o.Failed...)}
}

func (o batchOut[S]) xmlResult() any {
	return batchXML[S]{name: o.xmlName, ok: o.Successful, failed: o.Failed}
}

type sendMessageBatchIn struct {
	QueueUrl string
	Entries  []sendBatchEntryIn
}

type sendBatchEntryIn struct {
	Id string
	messageFields
}

func sendMessageBatchQuery(p awsproto.Params) (sendMessageBatchIn, error) {
	in := sendMessageBatchIn{QueueUrl: p.String("QueueUrl")}
	for _, e := range p.Flat("SendMessageBatchRequestEntry") {
		f, err := messageFieldsQuery(e)
		if err != nil {
			return in, err
		}
		in.Entries = append(in.Entries, sendBatchEntryIn{Id: e.String("Id"), messageFields: f})
	}
	return in, nil
}

type sendBatchEntryOut struct {
	Id string `json:"Id" xml:"Id"`
	sentOut
}

func (h *Handler) sendMessageBatch(c call, in sendMessageBatchIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	entries := make([]messaging.SendMessageBatchEntry, len(in.Entries))
	var failed []batchError
	for i, e := range in.Entries {
		msg, err := e.input()
		if err != nil {
			// Undecodable entries fail on their own; the broker sees an
			// empty body, which it fails the same way if it gets that far.
			failed = append(failed, newBatchError(e.Id, awsproto.AsError(err, "InvalidParameterValue")))
		}
		entries[i] = messaging.SendMessageBatchEntry{ID: e.Id, SendMessageInput: msg}
	}
	results, err := h.q.SendMessageBatch(name, entries)
	if err != nil {
		return nil, err
	}
	out := batchOut[sendBatchEntryOut]{xmlName: "SendMessageBatchResultEntry", Failed: failed}
	for _, r := range results {
		switch {
		case hasFailed(failed, r.ID):
		case r.Err != nil:
			out.Failed = append(out.Failed, newBatchError(r.ID, r.Err))
		default:
			out.Successful = append(out.Successful, sendBatchEntryOut{Id: r.ID, sentOut: sent(r.SentMessage)})
		}
	}
	return out, nil
}

func hasFailed(failed []batchError, id string) bool {
	for _, f := range failed {
		if f.Id == id {
			return true
		}
	}
	return false
}

// receiptIn is DeleteMessage's and ChangeMessageVisibility's input.
type receiptIn struct {
	QueueUrl          string
	ReceiptHandle     string
	VisibilityTimeout *int
}

func receiptQuery(p awsproto.Params) (receiptIn, error) {
	vt, err := optInt(p, "VisibilityTimeout")
	return receiptIn{QueueUrl: p.String("QueueUrl"), ReceiptHandle: p.String("ReceiptHandle"), VisibilityTimeout: vt}, err
}

func (h *Handler) deleteMessage(c call, in receiptIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, missing("ReceiptHandle")
	}
	return noOutput{}, h.q.DeleteMessage(name, in.ReceiptHandle)
}

func (h *Handler) changeMessageVisibility(c call, in receiptIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.ReceiptHandle == "" {
		return nil, missing("ReceiptHandle")
	}
	if in.VisibilityTimeout == nil {
		return nil, missing("VisibilityTimeout")
	}
	return noOutput{}, h.q.ChangeMessageVisibility(name, in.ReceiptHandle, *in.VisibilityTimeout)
}

type receiptBatchIn struct {
	QueueUrl string
	Entries  []receiptEntryIn
}

type receiptEntryIn struct {
	Id                string
	ReceiptHandle     string
	VisibilityTimeout *int
}

func receiptBatchQuery(p awsproto.Params, entryName string) (receiptBatchIn, error) {
	in := receiptBatchIn{QueueUrl: p.String("QueueUrl")}
	for _, e := range p.Flat(entryName) {
		vt, err := optInt(e, "VisibilityTimeout")
		if err != nil {
			return in, err
		}
		in.Entries = append(in.Entries, receiptEntryIn{Id: e.String("Id"), ReceiptHandle: e.String("ReceiptHandle"), VisibilityTimeout: vt})
	}
	return in, nil
}

func deleteBatchQuery(p awsproto.Params) (receiptBatchIn, error) {
	return receiptBatchQuery(p, "DeleteMessageBatchRequestEntry")
}

func changeVisibilityBatchQuery(p awsproto.Params) (receiptBatchIn, error) {
	return receiptBatchQuery(p, "ChangeMessageVisibilityBatchRequestEntry")
}

type idOut struct {
	Id string `json:"Id" xml:"Id"`
}

// entries converts the batch for the broker; a missing VisibilityTimeout
// (optional in the model) is 0.
func (in receiptBatchIn) entries() []messaging.ReceiptEntry {
	out := make([]messaging.ReceiptEntry, len(in.Entries))
	for i, e := range in.Entries {
		out[i] = messaging.ReceiptEntry{ID: e.Id, ReceiptHandle: e.ReceiptHandle}
		if e.VisibilityTimeout != nil {
			out[i].VisibilityTimeout = *e.VisibilityTimeout
		}
	}
	return out
}

func receiptBatchOut(xmlName string, results []messaging.ReceiptResult) output {
	out := batchOut[idOut]{xmlName: xmlName}
	for _, r := range results {
		if r.Err != nil {
			out.Failed = append(out.Failed, newBatchError(r.ID, r.Err))
		} else {
			out.Successful = append(out.Successful, idOut{r.ID})
		}
	}
	return out
}

func (h *Handler) deleteMessageBatch(c call, in receiptBatchIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	results, err := h.q.DeleteMessageBatch(name, in.entries())
	if err != nil {
		return nil, err
	}
	return receiptBatchOut("DeleteMessageBatchResultEntry", results), nil
}

func (h *Handler) changeMessageVisibilityBatch(c call, in receiptBatchIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	results, err := h.q.ChangeMessageVisibilityBatch(name, in.entries())
	if err != nil {
		return nil, err
	}
	return receiptBatchOut("ChangeMessageVisibilityBatchResultEntry", results), nil
}

// ReceiveMessage ----------------------------------------------------------------------

type receiveMessageIn struct {
	QueueUrl                    string
	AttributeNames              []string
	MessageSystemAttributeNames []string
	MessageAttributeNames       []string
	MaxNumberOfMessages         *int
	VisibilityTimeout           *int
	WaitTimeSeconds             *int
	ReceiveRequestAttemptId     string
}

func receiveMessageQuery(p awsproto.Params) (receiveMessageIn, error) {
	in := receiveMessageIn{
		QueueUrl: p.String("QueueUrl"),
		// Both AttributeNames and MessageSystemAttributeNames are
		// AttributeName.N in the query protocol.
		AttributeNames:          p.FlatStrings("AttributeName"),
		MessageAttributeNames:   p.FlatStrings("MessageAttributeName"),
		ReceiveRequestAttemptId: p.String("ReceiveRequestAttemptId"),
	}
	var err error
	for name, dst := range map[string]**int{"MaxNumberOfMessages": &in.MaxNumberOfMessages, "VisibilityTimeout": &in.VisibilityTimeout, "WaitTimeSeconds": &in.WaitTimeSeconds} {
		if *dst, err = optInt(p, name); err != nil {
			return in, err
		}
	}
	return in, nil
}

type messageOut struct {
	MessageId              string               `json:"MessageId"`
	ReceiptHandle          string               `json:"ReceiptHandle"`
	MD5OfBody              string               `json:"MD5OfBody"`
	Body                   string               `json:"Body"`
	Attributes             map[string]string    `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string               `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]attrValue `json:"MessageAttributes,omitempty"`
}

type messagesOut []messageOut

func (o messagesOut) jsonBody() any {
	if len(o) == 0 {
		return nil
	}
	return struct {
		Messages []messageOut `json:"Messages"`
	}{o}
}

func (o messagesOut) xmlResult() any {
	type value struct {
		StringValue string `xml:"StringValue,omitempty"`
		BinaryValue string `xml:"BinaryValue,omitempty"`
		DataType    string `xml:"DataType"`
	}
	type attribute struct {
		Name  string `xml:"Name"`
		Value value  `xml:"Value"`
	}
	type message struct {
		MessageId              string      `xml:"MessageId"`
		ReceiptHandle          string      `xml:"ReceiptHandle"`
		MD5OfBody              string      `xml:"MD5OfBody"`
		Body                   string      `xml:"Body"`
		Attributes             []nameValue `xml:"Attribute"`
		MD5OfMessageAttributes string      `xml:"MD5OfMessageAttributes,omitempty"`
		MessageAttributes      []attribute `xml:"MessageAttribute"`
	}
	msgs := make([]message, len(o))
	for i, m := range o {
		msgs[i] = message{
			MessageId: m.MessageId, ReceiptHandle: m.ReceiptHandle, MD5OfBody: m.MD5OfBody, Body: m.Body,
			Attributes: nameValues(m.Attributes), MD5OfMessageAttributes: m.MD5OfMessageAttributes,
		}
		for _, name := range sortedPairs(m.MessageAttributes) {
			a := m.MessageAttributes[name]
			v := value{StringValue: a.StringValue, DataType: a.DataType}
			if a.BinaryValue != nil {
				v.BinaryValue = base64.StdEncoding.EncodeToString(a.BinaryValue)
			}
			msgs[i].MessageAttributes = append(msgs[i].MessageAttributes, attribute{name, v})
		}
	}
	return struct {
		Messages []message `xml:"Message"`
	}{msgs}
}

func (h *Handler) receiveMessage(c call, in receiveMessageIn) (output, error) {
	name, err := c.queueName(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	msgs, err := h.q.ReceiveMessage(c.ctx, name, messaging.ReceiveMessageInput{
		MaxNumberOfMessages:   in.MaxNumberOfMessages,
		VisibilityTimeout:     in.VisibilityTimeout,
		WaitTimeSeconds:       in.WaitTimeSeconds,
		AttributeNames:        append(append([]string{}, in.AttributeNames...), in.MessageSystemAttributeNames...),
		MessageAttributeNames: in.MessageAttributeNames,
		AttemptID:             in.ReceiveRequestAttemptId,
	})
	if err != nil {
		return nil, err
	}
	out := make(messagesOut, len(msgs))
	for i, m := range msgs {
		out[i] = messageOut{
			MessageId: m.MessageID, ReceiptHandle: m.ReceiptHandle, MD5OfBody: m.MD5OfBody, Body: m.Body,
			Attributes: m.Attributes, MD5OfMessageAttributes: m.MD5OfMessageAttributes,
			MessageAttributes: wireAttrs(m.MessageAttributes),
		}
	}
	return out, nil
}

// batchXML marshals a batch result: each successful entry as a flattened
// <name> element, each failure as <BatchResultErrorEntry>.
type batchXML[S any] struct {
	name   string
	ok     []S
	failed []batchError
}

// MarshalXML writes <Result><name>…</name>…<BatchResultErrorEntry>…</Result>.
func (b batchXML[S]) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, s := range b.ok {
		if err := e.EncodeElement(s, xml.StartElement{Name: xml.Name{Local: b.name}}); err != nil {
			return err
		}
	}
	for _, f := range b.failed {
		if err := e.EncodeElement(f, xml.StartElement{Name: xml.Name{Local: "BatchResultErrorEntry"}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

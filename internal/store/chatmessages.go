package store

import (
	"errors"
	"time"
)

// bucketChatMessages holds the chat messages drguard posted about pending
// approvals (Slack messages with Approve and Reject buttons), keyed by
// approval and notifier, while they may still need an update. A message
// is removed once it shows its approval's final state.
var bucketChatMessages = []byte("chat_messages")

func init() { allBuckets = append(allBuckets, bucketChatMessages) }

// ChatMessage is one message about an approval in a chat channel.
type ChatMessage struct {
	ApprovalID string `json:"approvalId"`
	Notifier   string `json:"notifier"`
	Channel    string `json:"channel"`
	// TS is the message's timestamp, Slack's ID of a message in a channel.
	TS string `json:"ts"`
	// Shown identifies the state of the approval the message shows (its
	// state and votes), so that it is updated only when that changes.
	Shown    string    `json:"shown"`
	PostedAt time.Time `json:"postedAt"`
}

func chatMessageKey(approvalID, notifier string) []byte {
	return []byte(approvalID + "\x00" + notifier)
}

// ChatMessage reads the message of an approval posted through a notifier.
func (t *Tx) ChatMessage(approvalID, notifier string) (ChatMessage, error) {
	var m ChatMessage
	return m, t.get(bucketChatMessages, string(chatMessageKey(approvalID, notifier)), &m)
}

// PutChatMessage writes a message record.
func (t *Tx) PutChatMessage(m ChatMessage) error {
	if m.ApprovalID == "" || m.Notifier == "" {
		return errors.New("a chat message needs an approval and a notifier")
	}
	return t.put(bucketChatMessages, chatMessageKey(m.ApprovalID, m.Notifier), m)
}

// DeleteChatMessage removes a message record; a missing one is no error.
func (t *Tx) DeleteChatMessage(approvalID, notifier string) error {
	return t.kv.del(bucketChatMessages, chatMessageKey(approvalID, notifier))
}

// ForEachChatMessage calls fn for every message record, by approval.
func (t *Tx) ForEachChatMessage(fn func(ChatMessage) error) error {
	return forEach(t, bucketChatMessages, fn)
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"

	"postgate/queue"
)

// showMessage prints a queued message in postcat -q's shape: envelope
// records, then the content with LF line ends. With raw, only the stored
// content bytes are written, unchanged.
//
// A message in the corrupt queue whose own record is damaged has no
// content to vouch for: raw writes what is left of its record body
// (encoded envelope, then content) and fails saying so; otherwise its
// envelope, if it decodes, is printed and the damage named.
func showMessage(snap *queue.Snapshot, id string, raw bool) error {
	msg, ok := snap.Get(id)
	if !ok {
		return fmt.Errorf("%s: no such message in the queue", id)
	}
	content, err := snap.Content(id)
	damaged := err != nil && errors.Is(err, queue.ErrCorrupt) && content != nil
	if err != nil && !damaged {
		return fmt.Errorf("%s: %w", id, err)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	if raw {
		if _, err := w.Write(content); err != nil || !damaged {
			return err
		}
		return fmt.Errorf("%s: in the corrupt queue (%s): wrote the %d bytes left of its record body, unverified", id, msg.Damage, len(content))
	}
	where := msg.State.String() + "/" + id
	fmt.Fprintf(w, "*** ENVELOPE RECORDS %s ***\n", where)
	fmt.Fprintf(w, "message_size: %16d\n", msg.Size)
	fmt.Fprintf(w, "message_arrival_time: %s\n", msg.Arrival.Format("Mon Jan _2 15:04:05 2006"))
	fmt.Fprintf(w, "named_attribute: log_client_name=%s\n", msg.ClientName)
	fmt.Fprintf(w, "named_attribute: log_client_address=%s\n", msg.ClientAddr)
	fmt.Fprintf(w, "named_attribute: log_helo_name=%s\n", msg.Helo)
	fmt.Fprintf(w, "named_attribute: log_protocol_name=%s\n", msg.Proto)
	if msg.EnvID != "" {
		fmt.Fprintf(w, "named_attribute: envelope_id=%s\n", msg.EnvID)
	}
	if msg.RET != "" {
		fmt.Fprintf(w, "named_attribute: ret=%s\n", msg.RET)
	}
	fmt.Fprintf(w, "sender: %s\n", msg.Sender)
	for _, r := range msg.Recipients {
		if r.ORCPT != "" {
			fmt.Fprintf(w, "original_recipient: %s\n", r.ORCPT)
		}
		if r.Notify != "" {
			fmt.Fprintf(w, "dsn_notify: %s\n", r.Notify)
		}
		fmt.Fprintf(w, "recipient: %s\n", r.Addr)
	}
	if damaged {
		fmt.Fprintf(w, "*** DAMAGED RECORD %s: %s; postgate queue show --raw %s writes what is left of it ***\n", where, msg.Damage, id)
		return nil
	}
	fmt.Fprintf(w, "*** MESSAGE CONTENTS %s ***\n", where)
	w.Write(bytes.ReplaceAll(content, []byte("\r\n"), []byte("\n")))
	fmt.Fprintf(w, "*** MESSAGE FILE END %s ***\n", where)
	return nil
}

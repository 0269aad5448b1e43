// Package addrheader rewrites the addresses in a message header (From:,
// To:, Cc:, Reply-To:, ...) as Postfix's cleanup does for
// canonical_maps, masquerading and the local rewriting context: it parses
// the header with Postfix's RFC 822 parser (rules/tok822), hands each
// address to the caller, and when one changed re-makes the header line
// the way cleanup writes it, byte for byte.
package addrheader

import (
	"bytes"
	"strings"

	"postgate/rules/tok822"
)

// DefaultTokenLimit is Postfix's token_limit default: the parser reads at
// most this many tokens of a header value and drops the rest.
const DefaultTokenLimit = 10240

// foldWidth is the length under which cleanup_fold_header joins the
// one-address lines of a rewritten header.
const foldWidth = 70

// Rewrite parses value, the text after "name:" (folded lines joined by
// "\n" and white space, no trailing newline), reading at most tokenLimit
// tokens when tokenLimit > 0, and calls rewrite for each address found.
// rewrite gets the address in internal form, the local part unquoted
// (`"a b"@x` is `a b@x`, a source route `@a,@b:u@d` kept), and in
// external form, as Postfix sends it to trivial-rewrite: only there can
// the domain be told apart, as what follows the last '@' outside quotes
// (`"a@b"` has none, `a@b` has one). It returns the new address in
// internal form. An empty <> is no address, as in Postfix; `<"">` is the
// address "".
//
// When at least one call returned a different address (or an address
// read back differs from what was written, as `"a""b"@x`), Rewrite
// returns the whole header line as cleanup writes it: name + ": " + the
// addresses with their local parts quoted again, lines joined while they
// stay under 70 bytes, continuation lines that start with neither space
// nor tab indented by a TAB, lines separated by "\n" with no trailing
// newline. An address expression whose comments and phrases exceed 250
// bytes is cut to <address>, with Postfix's warning text (without the
// "warning: " prefix) in warnings. When nothing changed, changed is false,
// line is empty and the caller keeps the header's original bytes.
//
// The header_size_limit cut of cleanup_out_header is the caller's.
//
// Known differences from Postfix, where it calls trivial-rewrite and each
// canonical table on the external form and compares external forms: an
// address that a table maps to itself while the header quotes it in
// another way than quote_822_local would (`"joe"@x` found as joe@x ->
// joe@x) counts as a change in Postfix and re-makes the header; here
// rewrite returns the same internal form and nothing changes.
//
// The lead's wiring (cleanup stage), per header of the primary message
// header block whose ClassOf is Sender or Recipient, when header
// rewriting applies to the client (local_header_rewrite_clients or
// remote_header_rewrite_domain):
//
//	name, value, _ := addrheader.SplitHeader(line)
//	out, changed, warns := addrheader.Rewrite(name, value, tokenLimit, rewrite)
//	// changed: write out (lines joined by "\n"), log each warns[i] as
//	// "warning: "+warns[i]; else write name + ":" + value.
//
// rewrite is trivial-rewrite's local (or remote) context followed by
// the canonical maps of the class, on the internal form.
func Rewrite(name, value string, tokenLimit int, rewrite func(addr, external string) string) (line string, changed bool, warnings []string) {
	if i := strings.IndexByte(value, 0); i >= 0 {
		value = value[:i] // Postfix reads a C string
	}
	var arena tok822.Arena // the header's tokens, rescanned ones too
	tree := arena.Parse(value, tokenLimit)
	for tp := tree; tp != nil; tp = tp.Next {
		if tp.Type == tok822.Address && rewriteAddr(&arena, tp, rewrite) {
			changed = true
		}
	}
	if !changed {
		return "", false, nil
	}
	warn := func(s string) { warnings = append(warnings, s) }
	b := tok822.Externalize([]byte(name+": "), tree, tok822.Line|tok822.Truncate, warn)
	return outHeader(fold(b)), true, warnings
}

// rewriteAddr rewrites one address node in place, as cleanup_rewrite_tree
// and cleanup_map11_tree do: the address goes out in external form, comes
// back in external form and is scanned again into tokens without an
// owner. It reports a change when the text that came back differs.
func rewriteAddr(arena *tok822.Arena, addr *tok822.Token, rewrite func(string, string) string) bool {
	sent := string(tok822.Externalize(nil, addr.Head, 0, nil))
	// Postfix's trivial-rewrite reads the address and writes it out again;
	// the tokens it reads have no owner, so adjacent words get a space.
	first, _ := arena.Scan(sent, 0)
	back := string(tok822.Externalize(nil, first, 0, nil))
	changed := back != sent
	internal := tok822.UnquoteLocal(back)
	if r := rewrite(internal, back); r != internal {
		back, changed = string(tok822.QuoteLocal(nil, r)), true
	}
	addr.Head, addr.Tail = arena.Scan(back, 0)
	return changed
}

// fold joins the lines of a rewritten header (one address expression per
// line) while the line being built stays under foldWidth bytes, as
// cleanup_fold_header does.
func fold(b []byte) []byte {
	lineStart := 0
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		next := i + 1
		end := len(b)
		if j := bytes.IndexByte(b[next:], '\n'); j >= 0 {
			end = next + j
		}
		if end-lineStart < foldWidth {
			b[i] = ' '
		} else {
			lineStart = next
		}
	}
	return b
}

// outHeader indents each continuation line that starts with neither
// space nor tab by a TAB, as cleanup_out_header does.
func outHeader(b []byte) string {
	lines := strings.Split(string(b), "\n")
	for i := 1; i < len(lines); i++ {
		if l := lines[i]; l == "" || (l[0] != ' ' && l[0] != '\t') {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "\n")
}

// An Element is one top-level item of a parsed address list.
type Element struct {
	// Address is set for an address; Text is then its internal form.
	Address bool
	// Op is the byte of an operator ('<', ',', ':', ...), with ':' also
	// for the start of a group; 0 for a word (atom, quoted string,
	// comment, domain literal), whose external form is in Text.
	Op   byte
	Text string
}

// Parse parses text as Postfix's tok822_parse_limit does (at most
// tokenLimit tokens when tokenLimit > 0) and returns its top-level
// elements in order: the addresses, and what lies between them.
func Parse(text string, tokenLimit int) []Element {
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	var out []Element
	for tp := tok822.Parse(text, tokenLimit); tp != nil; tp = tp.Next {
		switch tp.Type {
		case tok822.Address:
			out = append(out, Element{Address: true, Text: string(tok822.Internalize(nil, tp.Head))})
		case tok822.StartGroup:
			out = append(out, Element{Op: ':'})
		case tok822.Atom, tok822.QuotedString, tok822.Comment, tok822.DomainLiteral:
			out = append(out, Element{Text: string(tok822.ExternalWord(nil, tp))})
		default:
			out = append(out, Element{Op: byte(tp.Type)})
		}
	}
	return out
}

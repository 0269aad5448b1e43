package rules

import (
	"context"
	"strings"
)

// SplitExtension splits a local part at its first recipient_delimiter
// character: user+ext gives user and +ext. As Postfix's split_addr, the
// names its own daemons use (postmaster, MAILER-DAEMON, double-bounce)
// never split, nor owner-list and list-request when '-' is a delimiter.
func SplitExtension(local, delims string) (base, ext string) {
	if delims == "" {
		return local, ""
	}
	switch {
	case strings.EqualFold(local, "postmaster"), strings.EqualFold(local, "MAILER-DAEMON"),
		strings.EqualFold(local, "double-bounce"):
		return local, ""
	case strings.Contains(delims, "-") && (hasPrefixFold(local, "owner-") || hasSuffixFold(local, "-request") && len(local) > len("-request")):
		return local, ""
	}
	i := strings.IndexAny(local, delims)
	if i <= 0 {
		return local, ""
	}
	return local[:i], local[i:]
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// FindAddress looks an address up as Postfix's mail_addr_find does (for
// recipient validation and virtual aliasing): every table sees the whole
// address (lowercased); fixed-string tables then see it without its
// extension, for a local domain the local part alone (with and without
// extension), and last @domain. It returns the value and, when the match
// was found without it, the extension.
func FindAddress(ctx context.Context, tables []Table, addr string, localDomain bool, delims string) (value, ext string, found bool, err error) {
	if len(tables) == 0 {
		return "", "", false, nil
	}
	addr = strings.ToLower(addr)
	type key struct{ k, ext string }
	keys := []key{{addr, ""}}
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		local, domain := addr[:at], addr[at+1:]
		base, e := SplitExtension(local, delims)
		if e != "" {
			keys = append(keys, key{base + "@" + domain, e})
		}
		if localDomain {
			keys = append(keys, key{local, ""})
			if e != "" {
				keys = append(keys, key{base, e})
			}
		}
		keys = append(keys, key{"@" + domain, ""})
	}
	for i, k := range keys {
		for _, t := range tables {
			if i > 0 && !IsFixedString(t) {
				continue
			}
			v, ok, err := t.Lookup(ctx, k.k)
			if err != nil || ok {
				return v, k.ext, ok, err
			}
		}
	}
	return "", "", false, nil
}

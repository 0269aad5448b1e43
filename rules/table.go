package rules

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Table is a lookup table opened from "type:name". found=false with err=nil
// is "not found"; err!=nil is a lookup failure, never to be mistaken for
// "not found".
type Table interface {
	Lookup(ctx context.Context, key string) (value string, found bool, err error)
}

// FixedString is an optional ability: true for tables whose keys are literal
// strings (texthash, inline, static, hash...). Such tables get partial-key
// lookups (parent domains, user@, IP prefixes) and lowercased keys; pattern
// tables (regexp, pcre, cidr) see the full key once, in its original case.
type FixedString interface {
	FixedString() bool
}

// Lister is an optional ability: the table's entries, keys sorted (as
// postmap -s lists a table; pattern tables cannot be listed).
type Lister interface {
	List() [][2]string
}

// sortedEntries lists a key-value map in key order.
func sortedEntries(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}

// IsFixedString reports whether t is a fixed-string table.
func IsFixedString(t Table) bool {
	f, ok := t.(FixedString)
	return ok && f.FixedString()
}

// OpenOptions are the optional dependencies of OpenWith.
type OpenOptions struct {
	// Warn receives problems that do not stop the table from working:
	// duplicate keys, and a reload that failed (the table then keeps
	// serving its previous contents). Nil discards them.
	Warn func(msg string)
	// Aliases: a texthash-family file is in aliases(5) format ("name:
	// value"), as the files alias_maps names are (postalias, not postmap).
	Aliases bool
	// Cache applies to the tables of registered types (see Register).
	Cache CacheOptions
}

func (o OpenOptions) warn(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

// Open opens a table from its spec "type:name" with default options.
//
//   - texthash:/path reads the source file; it is reloaded when the file
//     changes (checked at most once a second).
//   - hash:, lmdb:, btree:, cdb:, dbm:, sdbm: read the SOURCE file at the
//     same path (the admin's /etc/postfix/access, not access.db) with
//     texthash semantics: no postmap step is needed.
//   - inline:{ k=v, { k2 = v with spaces } } and static:value / static:{ text }.
//   - regexp:/path and regexp:{ {/re/ result}, ... } (POSIX ERE rules).
//   - cidr:/path and cidr:{ {net/len result}, ... }, reloaded like texthash.
//   - unionmap:{type:name, ...} and pipemap:{type:name, ...}.
//   - unix:passwd.byname and unix:group.byname (/etc/passwd, /etc/group).
//   - pcre:/path and pcre:{ {/re/ result}, ... } (PCRE rules, run by
//     regexp2; a construct it cannot run as PCRE2 does is a load error).
//   - fail:name fails every lookup (useful to test error handling).
//   - proxy:type:name opens type:name directly.
func Open(spec string) (Table, error) {
	return OpenWith(spec, OpenOptions{})
}

// OpenWith is Open with options.
func OpenWith(spec string, o OpenOptions) (Table, error) {
	typ, name, ok := strings.Cut(spec, ":")
	if !ok || typ == "" || name == "" {
		return nil, fmt.Errorf("open dictionary: expecting \"type:name\" form instead of %q", spec)
	}
	typ = strings.ToLower(typ)
	if typ == "proxy" {
		return OpenWith(name, o)
	}
	open, ok := openers[typ]
	if !ok {
		if notYet[typ] {
			return nil, fmt.Errorf("dictionary type %s is not implemented yet", typ)
		}
		return nil, fmt.Errorf("unsupported dictionary type: %s", typ)
	}
	return open(typ, name, o)
}

type opener func(typ, name string, o OpenOptions) (Table, error)

// openers is the registry of table types, by Postfix type name.
var openers = map[string]opener{
	"texthash": openTexthash,
	"hash":     openTexthash,
	"btree":    openTexthash,
	"lmdb":     openTexthash,
	"cdb":      openTexthash,
	"dbm":      openTexthash,
	"sdbm":     openTexthash,
	"inline":   openInline,
	"static":   openStatic,
	"fail":     openFail,
	"regexp":   openRegexp,
	"cidr":     openCIDR,
	"pcre":     openPCRE,
	"unix":     openUnix,
}

// The composite tables open their parts through the registry.
func init() {
	openers["unionmap"] = openUnion
	openers["pipemap"] = openPipe
}

// Register adds a table type served by a subpackage (database and network
// tables), so that rules does not import their drivers. Its tables get the
// cache and the bound of OpenOptions.Cache.
func Register(typ string, open func(typ, name string, o OpenOptions) (Table, error)) {
	openers[typ] = func(typ, name string, o OpenOptions) (Table, error) {
		t, err := open(typ, name, o)
		if err != nil {
			return nil, err
		}
		return o.Cache.wrap(typ+":"+name, t), nil
	}
	delete(notYet, typ)
}

// notYet lists Postfix table types postgate knows but does not serve yet.
var notYet = map[string]bool{
	"tcp": true, "socketmap": true,
	"mysql": true, "pgsql": true, "sqlite": true, "ldap": true, "memcache": true,
	"randmap": true, "environ": true,
	"nis": true, "nisplus": true, "netinfo": true, "internal": true,
}

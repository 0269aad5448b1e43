package rules

import (
	"context"
	"fmt"
	"strings"
)

// unix:passwd.byname and unix:group.byname (Postfix's dict_unix): the
// system's users and groups by name, read from /etc/passwd and /etc/group
// (NSS sources beyond the files, such as LDAP, are not consulted). The
// value is the whole entry, as getpwnam/getgrnam give it to Postfix.
// Keys are lowercased; the files are read again when they change.
type unixTable struct {
	spec string
	*fileTable[map[string]string]
}

// unixFiles maps the table names Postfix knows to their files.
var unixFiles = map[string]string{"passwd.byname": "/etc/passwd", "group.byname": "/etc/group"}

func openUnix(typ, name string, o OpenOptions) (Table, error) {
	path, ok := unixFiles[name]
	if !ok {
		return nil, fmt.Errorf("unknown table: %s:%s", typ, name)
	}
	ft, err := openFileTable(path, o, parseUnixDB)
	if err != nil {
		return nil, err
	}
	return &unixTable{spec: typ + ":" + name, fileTable: ft}, nil
}

// parseUnixDB indexes colon-separated entries by their first field; the
// first entry of a name wins, as with getpwnam.
func parseUnixDB(data string) (map[string]string, error) {
	m := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.HasPrefix(name, "#") || strings.HasPrefix(name, "+") || strings.HasPrefix(name, "-") {
			continue
		}
		if _, dup := m[strings.ToLower(name)]; !dup {
			m[strings.ToLower(name)] = line
		}
	}
	return m, nil
}

func (t *unixTable) String() string { return t.spec }

func (t *unixTable) FixedString() bool { return true }

func (t *unixTable) Lookup(_ context.Context, key string) (string, bool, error) {
	v, ok := t.get()[strings.ToLower(key)]
	return v, ok, nil
}

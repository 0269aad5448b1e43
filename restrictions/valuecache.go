package restrictions

import "sync"

// maxCachedValues bounds the cache of restriction lists found as access
// table values; beyond it values are compiled on every use.
const maxCachedValues = 4096

// valueCache holds restriction lists compiled from access table values.
type valueCache struct {
	mu sync.Mutex
	m  map[string]*list
}

// valueList compiles an access table value as a restriction list, once.
// Bad items become steps that answer 451 4.3.5 when reached (Postfix's run
// time behaviour), so earlier items still decide.
func (l *Lists) valueList(value string) *list {
	l.values.mu.Lock()
	lst := l.values.m[value]
	l.values.mu.Unlock()
	if lst != nil {
		return lst
	}
	c := &compiler{l: l, lenient: true}
	lst, _ = c.compile("access table value", value)
	l.values.mu.Lock()
	defer l.values.mu.Unlock()
	if l.values.m == nil {
		l.values.m = map[string]*list{}
	}
	if len(l.values.m) < maxCachedValues {
		l.values.m[value] = lst
	}
	return lst
}

// Package nettable serves the lookup tables that ask a server over the
// network: memcache:, socketmap:, tcp: (as Postfix defines them) and
// redis: (a postgate extension). It registers them with rules when
// imported, so rules does not depend on their clients.
package nettable

import "postgate/rules"

func init() {
	rules.Register("memcache", openMemcache)
	rules.Register("socketmap", openSocketmap)
	rules.Register("tcp", openTCP)
	rules.Register("redis", openRedis)
}

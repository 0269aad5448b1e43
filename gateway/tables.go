package gateway

// Table types served by subpackages register themselves with rules when
// imported; the daemon imports them here so its tables can use them.
import (
	_ "postgate/rules/nettable"
)

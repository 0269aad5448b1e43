package gateway

// Table types served by subpackages of rules register themselves when
// imported; the daemon imports them here so its tables can use them.
import (
	_ "postgate/rules/ldaptable"
	_ "postgate/rules/nettable"
	_ "postgate/rules/sqltable"
)

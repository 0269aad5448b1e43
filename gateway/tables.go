package gateway

// The table types served by subpackages of rules register themselves when
// imported; the gateway, and so the postgate binary, serves them all.
import (
	_ "postgate/rules/sqltable"
)

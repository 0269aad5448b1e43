# postgate — build and test.
GO        ?= go
DEB_PKGS  := postfix postfix-pcre swaks pflogsumm rbldnsd nsd postgrey redis-server redis-sentinel \
             systemd opendkim opendkim-tools dovecot-core dovecot-lmtpd spamass-milter spamassassin spamd spamc rspamd \
             memcached postgresql mariadb-server slapd ldap-utils openssl
BIN       := bin/postgate

.PHONY: all build run test deps vet fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/postgate

# Run on the embedded defaults: 127.0.0.1:2525, queue in ./postgate-queue.
run: build
	./$(BIN) serve

# Install the Debian packages the tests use when they are missing (as root).
# Postfix is preseeded so it asks nothing; a temporary policy-rc.d keeps
# package scripts from starting any service, so nothing is left running.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make test needs Debian packages:$$missing (run as root to install them)"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  rcd=/usr/sbin/policy-rc.d; added=""; \
	  if [ ! -e $$rcd ]; then printf '#!/bin/sh\nexit 101\n' > $$rcd; chmod 755 $$rcd; added=1; fi; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; rc=$$?; \
	  [ -n "$$added" ] && rm -f $$rcd; \
	  exit $$rc; \
	fi

# gateway/go-smtp and milter/go-milter are postgate's patched go-smtp and
# go-milter, each its own module: ./... does not reach them, so they are
# vetted and tested explicitly.
vet:
	$(GO) vet ./...
	cd gateway/go-smtp && $(GO) vet ./...
	cd milter/go-milter && $(GO) vet ./...

test: deps vet
	cd gateway/go-smtp && $(GO) test -race -count=1 ./...
	cd milter/go-milter && $(GO) test -race -count=1 ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# The parsers of what SMTP clients send: a whole session through the real
# listener, and the envelope address parser; and the queue's readers of what
# is on disk: every record type's decoder through recovery, and recovery of
# a log damaged at random; the table file parsers, the access action parser,
# main.cf, and the header and body scanner. Budgets are execution counts of
# about 10 s each on a 2-core machine, not durations: Go 1.26's coordinator
# can fail a target with a bare "context deadline exceeded" when -fuzztime's
# deadline races a busy worker (go.dev/issue/75804, fixed in Go 1.27).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzSMTPSession$$' -fuzztime 4000x ./gateway
	$(GO) test -run '^$$' -fuzz '^FuzzExtractAddress$$' -fuzztime 500000x ./gateway/command
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 75000x ./queue
	$(GO) test -run '^$$' -fuzz '^FuzzRecover$$' -fuzztime 6000x ./queue
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSegIndex$$' -fuzztime 25000x ./queue
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePark$$' -fuzztime 400000x ./queue
	$(GO) test -run '^$$' -fuzz '^FuzzCIDRTable$$' -fuzztime 300000x ./rules
	$(GO) test -run '^$$' -fuzz '^FuzzRegexpTable$$' -fuzztime 40000x ./rules
	$(GO) test -run '^$$' -fuzz '^FuzzTexthash$$' -fuzztime 400000x ./rules
	$(GO) test -run '^$$' -fuzz '^FuzzAliases$$' -fuzztime 300000x ./rules
	$(GO) test -run '^$$' -fuzz '^FuzzParseAction$$' -fuzztime 400000x ./rules
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 12000x ./gateway/config
	$(GO) test -run '^$$' -fuzz '^FuzzContentChecks$$' -fuzztime 18000x ./gateway
	$(GO) test -run '^$$' -fuzz '^FuzzMIMEParser$$' -fuzztime 60000x ./gateway
	$(GO) test -run '^$$' -fuzz '^FuzzPCRETable$$' -fuzztime 250000x ./rules
	$(GO) test -run '^$$' -fuzz '^FuzzParseFilter$$' -fuzztime 250000x ./dnsbl
	$(GO) test -run '^$$' -fuzz '^FuzzHeaderValue$$' -fuzztime 400000x ./restrictions/spf
	$(GO) test -run '^$$' -fuzz '^FuzzServerReplies$$' -fuzztime 50000x ./rules/nettable
	$(GO) test -run '^$$' -fuzz '^FuzzTemplates$$' -fuzztime 50000x ./rules/dbcommon
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 80000x ./restrictions/dkim
	$(GO) test -run '^$$' -fuzz '^FuzzRewrite$$' -fuzztime 350000x ./rules/addrheader
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 100000x ./rules/tok822
	$(GO) test -run '^$$' -fuzz '^FuzzReadReply$$' -fuzztime 230000x ./policyd
	$(GO) test -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime 60000x ./policyd
	$(GO) test -run '^$$' -fuzz '^FuzzParseURL$$' -fuzztime 180000x ./greylist
	$(GO) test -run '^$$' -fuzz '^FuzzParseRate$$' -fuzztime 400000x ./restrictions
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessage$$' -fuzztime 150000x ./milter
	$(GO) test -run '^$$' -fuzz '^FuzzTLSPolicy$$' -fuzztime 100000x ./relay
	$(GO) test -run '^$$' -fuzz '^FuzzGenericHeaders$$' -fuzztime 20000x ./relay
	$(GO) test -run '^$$' -fuzz '^FuzzProtocols$$' -fuzztime 250000x ./relay/tlsfacts
	$(GO) test -run '^$$' -fuzz '^FuzzQuote$$' -fuzztime 20000x ./rules/sqltable
	$(GO) test -run '^$$' -fuzz '^FuzzFilter$$' -fuzztime 50000x ./rules/ldaptable

# Benchmarks stay out of `make test`; figures go in issue notes.
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./queue/
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./test/bench/

clean:
	rm -rf bin postgate-queue

package gateway

import (
	"context"
	"strconv"
	"strings"
)

// ehloMask is a set of EHLO keywords to leave out of the EHLO reply (and to
// stop honouring, as Postfix's ehlo_mask: discarding DSN refuses the DSN
// parameters, discarding CHUNKING refuses BDAT).
type ehloMask uint32

// The keywords smtpd_discard_ehlo_keywords can name, in Postfix's terms.
const (
	ehloPipelining ehloMask = 1 << iota
	ehloSize
	ehloVrfy
	ehloEtrn
	ehloStartTLS
	ehloAuth
	ehloVerp
	ehloXclient
	ehloXforward
	ehloEnhancedStatusCodes
	ehloEightBitMIME
	ehloDSN
	ehloSMTPUTF8
	ehloChunking
	ehloSilent // silent-discard: do not log the discarding
)

// ehloNames is Postfix's ehlo_mask_table, in its order (the order of the
// "discarding EHLO keywords" log line).
var ehloNames = []struct {
	name string
	mask ehloMask
}{
	{"8BITMIME", ehloEightBitMIME}, {"AUTH", ehloAuth}, {"ETRN", ehloEtrn},
	{"PIPELINING", ehloPipelining}, {"SIZE", ehloSize}, {"VERP", ehloVerp},
	{"VRFY", ehloVrfy}, {"XCLIENT", ehloXclient}, {"XFORWARD", ehloXforward},
	{"STARTTLS", ehloStartTLS}, {"ENHANCEDSTATUSCODES", ehloEnhancedStatusCodes},
	{"DSN", ehloDSN}, {"SMTPUTF8", ehloSMTPUTF8}, {"CHUNKING", ehloChunking},
	{"SILENT-DISCARD", ehloSilent},
}

// parseEHLOMask reads a list of keyword names; unknown names are ignored,
// as Postfix does.
func parseEHLOMask(words string) ehloMask {
	var m ehloMask
	for _, w := range strings.FieldsFunc(words, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		for _, n := range ehloNames {
			if strings.EqualFold(w, n.name) {
				m |= n.mask
			}
		}
	}
	return m
}

// String lists the keywords of the mask in Postfix's order (its
// str_ehlo_mask), for the "discarding EHLO keywords" log line.
func (m ehloMask) String() string {
	var words []string
	for _, n := range ehloNames {
		if m&n.mask != 0 {
			words = append(words, n.name)
		}
	}
	return strings.Join(words, " ")
}

// ehloDiscard is the mask for a client: smtpd_discard_ehlo_keyword_address_maps
// looked up by client address, else smtpd_discard_ehlo_keywords.
func (s *service) ehloDiscard(ctx context.Context, client clientInfo) (ehloMask, error) {
	for _, t := range s.ehloDiscardMaps {
		v, ok, err := t.Lookup(ctx, client.address())
		if err != nil {
			return 0, err
		}
		if ok {
			return parseEHLOMask(v), nil
		}
	}
	return s.ehloDiscardWords, nil
}

// ehloKeywords is the EHLO reply after the host name line, in Postfix's
// order, less the discarded keywords.
func (s *session) ehloKeywords() []string {
	m := s.ehloMask
	var out []string
	add := func(k ehloMask, word string) {
		if m&k == 0 {
			out = append(out, word)
		}
	}
	add(ehloPipelining, "PIPELINING")
	if s.svc.messageSizeLimit > 0 {
		add(ehloSize, "SIZE "+strconv.FormatInt(s.svc.messageSizeLimit, 10))
	} else {
		add(ehloSize, "SIZE")
	}
	if !s.svc.disableVrfy {
		add(ehloVrfy, "VRFY")
	}
	add(ehloEtrn, "ETRN")
	if s.svc.tls.offered() && s.tls == nil {
		add(ehloStartTLS, "STARTTLS")
	}
	out = append(out, s.authKeywords()...)
	if s.xclientOK {
		add(ehloXclient, "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT")
	}
	if s.xforwardOK {
		add(ehloXforward, "XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT")
	}
	add(ehloEnhancedStatusCodes, "ENHANCEDSTATUSCODES")
	add(ehloEightBitMIME, "8BITMIME")
	add(ehloDSN, "DSN")
	if s.svc.smtputf8 {
		add(ehloSMTPUTF8, "SMTPUTF8")
	}
	add(ehloChunking, "CHUNKING")
	return out
}

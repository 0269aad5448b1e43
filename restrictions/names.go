package restrictions

// Reply classes: what is rejected, as in "<name>: <class> rejected: <text>".
const (
	rcClient        = "Client host"
	rcReverseClient = "Unverified Client host"
	rcHelo          = "Helo command"
	rcSender        = "Sender address"
	rcRecipient     = "Recipient address"
	rcEtrn          = "Etrn command"
	rcData          = "Data command"
	rcEndOfData     = "End-of-data"
)

// accessKind is the check_*_access a bare type:table in a list stands for
// (Postfix's def_acl): it depends on the top-level list being evaluated.
type accessKind int

const (
	accessNone accessKind = iota
	accessClient
	accessHelo
	accessSender
	accessRecipient
	accessEtrn
)

// listParam describes one smtpd_*_restrictions parameter.
type listParam struct {
	name string
	acl  accessKind
}

// The restriction list parameters, in Lists' field order.
var listParams = []listParam{
	{"smtpd_client_restrictions", accessClient},
	{"smtpd_helo_restrictions", accessHelo},
	{"smtpd_sender_restrictions", accessSender},
	{"smtpd_relay_restrictions", accessRecipient},
	{"smtpd_recipient_restrictions", accessRecipient},
	{"smtpd_data_restrictions", accessNone},
	{"smtpd_end_of_data_restrictions", accessNone},
	{"smtpd_etrn_restrictions", accessEtrn},
}

const (
	idxClient = iota
	idxHelo
	idxSender
	idxRelay
	idxRecipient
	idxData
	idxEndOfData
	idxEtrn
)

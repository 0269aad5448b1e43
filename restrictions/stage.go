package restrictions

import "strconv"

// Stage is the SMTP command (or moment) a check runs for.
type Stage int

// The stages. Helo and Ehlo behave alike; they differ only in name.
const (
	Connect Stage = iota
	Helo
	Ehlo
	Mail
	Rcpt
	Data
	EndOfData
	Etrn
)

var stageNames = [...]string{
	Connect: "CONNECT", Helo: "HELO", Ehlo: "EHLO", Mail: "MAIL", Rcpt: "RCPT",
	Data: "DATA", EndOfData: "END-OF-MESSAGE", Etrn: "ETRN",
}

// String returns the stage as Postfix logs it ("NOQUEUE: reject: RCPT from ...").
func (s Stage) String() string {
	if s >= 0 && int(s) < len(stageNames) {
		return stageNames[s]
	}
	return "Stage(" + strconv.Itoa(int(s)) + ")"
}

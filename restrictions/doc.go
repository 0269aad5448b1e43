// Package restrictions compiles the smtpd_*_restrictions lists of one
// runtime and evaluates them per SMTP stage with Postfix semantics
// (postfix-semantics §2): first decision wins within a list, an OK ends only
// its own list, delayed client/helo/sender evaluation at RCPT,
// defer_if_permit/defer_if_reject/warn_if_reject, restriction classes,
// access(5) tables whose values are actions or restriction lists, and the
// reply post-processing every reject goes through.
//
// A list compiles to a flat slice of steps in the admin's order; each
// restriction name maps to a constructor in one registry. Nothing is
// parsed per request, except restriction lists found as access table values,
// which are compiled on first use and cached.
package restrictions

// Package rules holds the data admins write: lookup tables opened from
// "type:name", the access(5) action language, and Postfix match lists
// (mynetworks, relay_domains, mydestination).
//
// A table lookup has three outcomes: found, not found, and error. An error
// is never turned into "not found"; callers decide what a failed lookup
// means (restrictions answer 451).
package rules

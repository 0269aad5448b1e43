// Package config reads Postfix's configuration language for postgate: main.cf and
// master.cf, $name expansion, built-in defaults and typed access, with diagnostics
// that name the file, line and parameter.
//
// It only parses and types. Restriction lists are compiled and tables opened by the
// gateway, which uses Pos to say where a setting came from.
//
// Values are kept raw and expanded lazily, as Postfix does, so a value may refer to
// a parameter set later in the file or to a built-in default. A master.cf service's
// "-o name=value" overrides take part in expansion in that service's view
// (ForService).
package config

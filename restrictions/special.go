package restrictions

// classStep evaluates a restriction class; its result is the result of
// the step.
func classStep(name string) runFunc {
	return func(e *eval) status {
		if e.recursion > maxRecursion {
			e.warning("restriction class %s causes unreasonable recursion", name)
			return e.serverError()
		}
		return e.evalList(e.l.classes[name])
	}
}

// failStep answers a configuration error found in an access table value.
func failStep(err error) step {
	return step{name: "error", run: func(e *eval) status {
		e.warning("%v", err)
		return e.serverError()
	}}
}

// notImplemented answers 451 4.3.5 for a restriction postgate lacks.
func notImplemented(name string) runFunc {
	return func(e *eval) status {
		e.warning("restriction %q is not implemented by postgate", name)
		return e.serverError()
	}
}

// buildRemoved makes a restriction Postfix 3.9 removed: 451 4.3.5.
func buildRemoved(alt string) builder {
	return func(_ *compiler, name, _ string, _ *tableRef) runFunc {
		return func(e *eval) status {
			e.warning("support for restriction %q has been removed in Postfix 3.9; instead, specify \"%s\"", name, alt)
			return e.serverError()
		}
	}
}

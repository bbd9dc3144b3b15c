package perr

// OrErr turns a foreign error into an *Error of type t with the context and
// err as the cause (the reference's or_err). It returns nil when err is nil,
// so it can wrap a call's result directly:
//
//	return perr.OrErr(f.Close(), perr.FileWriteError, "closing cache file")
func OrErr(err error, t ErrorType, context string) error {
	if err == nil {
		return nil
	}
	return Because(t, context, err)
}

// ExplainErr replaces err with a new *Error of type t whose context is
// explain(err); err is not kept as the cause (the reference's explain_err).
// It returns nil when err is nil.
func ExplainErr(err error, t ErrorType, explain func(error) string) error {
	if err == nil {
		return nil
	}
	return Explain(t, explain(err))
}

// OrFail wraps err as an InternalError with no context (the reference's
// or_fail). It returns nil when err is nil.
func OrFail(err error) error {
	if err == nil {
		return nil
	}
	return Because(InternalError, "", err)
}

// WithContext adds context to err (the reference's err_context). If err's
// chain holds an *Error, the result keeps that error's type, source and retry
// and has err as its cause, like MoreContext; otherwise it is an InternalError
// caused by err. It returns nil when err is nil.
func WithContext(err error, context string) error {
	if err == nil {
		return nil
	}
	pe, ok := As(err)
	if !ok {
		return Because(InternalError, context, err)
	}
	return &Error{Type: pe.Type, Source: pe.Source, Retry: pe.Retry, Cause: err, Context: context}
}

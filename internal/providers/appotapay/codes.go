package appotapay

import "github.com/statusbridge/statusbridge/internal/providers"

// verdict is what one AppotaPay errorCode means for a status check.
type verdict struct {
	state providers.State // set when the code is an answer about the payment
	cause error           // set when the code says the check itself failed
	kind  providers.Kind
}

// codes maps the bill service's errorCodes (APP-ERR, docs.appotapay.com
// bill/error-code, plus 15 and 94 from the common table at /errors;
// providers.md §2.5–2.6) to what they mean for a status check. A status
// answer repeats the payment's own result, so most codes describe why the
// payment was refused. Where a code could mean that this payment went
// through, or still may, it is never read as failed: a wrong "failed" can
// make a requester pay a bill twice, a wrong "expired" only asks a human.
var codes = map[int]verdict{
	// Success.
	0: {state: providers.StateSuccess},

	// Pending: the texts say "check again later"; these are the codes the
	// error page highlights for a status check (the colour is lost in every
	// copy; these are the ones whose text says so).
	34:  {state: providers.StatePending}, // transaction processing, check later
	35:  {state: providers.StatePending}, // transaction pending, check later
	99:  {state: providers.StatePending}, // undefined error, re-check the transaction later
	132: {state: providers.StatePending}, // being processed, contact hotline

	// AppotaPay does not know the reference (yet).
	36: {state: providers.StateNotFound}, // transaction not found

	// The payment was refused: no money moved and none will.
	12:  {state: providers.StateFailed}, // partner balance not enough: refused before paying
	32:  {state: providers.StateFailed}, // invalid amount: refused before paying
	33:  {state: providers.StateFailed}, // transaction failed
	114: {state: providers.StateFailed}, // wrong invoice code or not yet due: nothing to pay
	115: {state: providers.StateFailed}, // invoice expired
	116: {state: providers.StateFailed}, // invoice not found
	117: {state: providers.StateFailed}, // invalid invoice amount
	120: {state: providers.StateFailed}, // invoice cancelled
	124: {state: providers.StateFailed}, // invoice information incorrect
	130: {state: providers.StateFailed}, // customer not found
	131: {state: providers.StateFailed}, // phone number not supported
	133: {state: providers.StateFailed}, // transaction refused

	// Ambiguous for a status check: "already paid", "already processed"
	// and "no debt left" are what the biller would also say right after
	// this very payment went through. Neither verdict can be read from them.
	118: {cause: providers.ErrUnknownCode}, // invoice already paid
	121: {cause: providers.ErrUnknownCode}, // invoice already processed
	122: {cause: providers.ErrUnknownCode}, // no debt information for the invoice

	// Documented for purchases, meaningless for a status check: a duplicate
	// partnerRefId answer says nothing about the payment that has it.
	31: {cause: providers.ErrUnknownCode},

	// Our request was not accepted. The status call's only parameter is the
	// reference in the path, but "missing or invalid params" does not say
	// which one, so it is not proof the reference is bad (ErrRejected would
	// settle the request at once): a client or configuration bug.
	1: {cause: providers.ErrProtocol},

	// Our account or credentials: an operator must act.
	2:  {cause: providers.ErrAuth}, // invalid signature (our JWT)
	11: {cause: providers.ErrAuth}, // partner not found
	13: {cause: providers.ErrAuth}, // partner blocked
	14: {cause: providers.ErrAuth}, // API key not found
	15: {cause: providers.ErrAuth}, // API key not activated or blocked
	23: {cause: providers.ErrAuth}, // API key inactive or blocked
	92: {cause: providers.ErrAuth}, // IP address not allowed

	// AppotaPay, the provider or the biller is unavailable right now.
	40:  {cause: providers.ErrUnavailable}, // system maintenance
	41:  {cause: providers.ErrUnavailable}, // provider down or in maintenance
	91:  {cause: providers.ErrUnavailable}, // system busy
	94:  {cause: providers.ErrUnavailable}, // system maintenance
	110: {cause: providers.ErrUnavailable}, // service provider missing or in maintenance
	112: {cause: providers.ErrUnavailable}, // service missing or in maintenance
	119: {cause: providers.ErrUnavailable}, // service maintenance
	123: {cause: providers.ErrUnavailable}, // invoice query error, retry
	500: {cause: providers.ErrUnavailable}, // system error
}

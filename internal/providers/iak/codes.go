package iak

import "github.com/statusbridge/statusbridge/internal/providers"

// verdict is what one IAK postpaid response_code means for a checkstatus.
type verdict struct {
	state providers.State // set when the code is an answer about the payment
	cause error           // set when the code says the check itself failed
	kind  providers.Kind
}

// codes maps IAK's postpaid response codes (docs/postpaid/response-code.md;
// providers.md §3.5–3.6) to what they mean for a status check. IAK tags many
// codes "Failed" that only say our query failed (bad sign, IP not
// whitelisted, maintenance); those never become a failed payment here.
var codes = map[string]verdict{
	// Success.
	"00": {state: providers.StateSuccess},

	// Pending: IAK's own "Pending" tag.
	"05":  {state: providers.StatePending}, // undefined error
	"39":  {state: providers.StatePending}, // pending / transaction in process
	"201": {state: providers.StatePending}, // undefined response code

	// IAK does not know the payment (yet).
	"06": {state: providers.StateNotFound}, // inquiry id / transaction not found

	// The payment failed (transaction-level rejections).
	"01": {state: providers.StateFailed}, // invoice already paid
	"02": {state: providers.StateFailed}, // bill unpaid (only inquired)
	"04": {state: providers.StateFailed}, // billing id / ref_id expired
	"07": {state: providers.StateFailed}, // transaction failed
	"08": {state: providers.StateFailed}, // billing id blocked
	"09": {state: providers.StateFailed}, // inquiry failed
	"10": {state: providers.StateFailed}, // bill not available yet
	"13": {state: providers.StateFailed}, // customer number blocked
	"14": {state: providers.StateFailed}, // incorrect destination number
	"15": {state: providers.StateFailed}, // number not supported by product
	"16": {state: providers.StateFailed}, // number does not match operator
	"17": {state: providers.StateFailed}, // balance not enough
	"20": {state: providers.StateFailed}, // product unregistered
	"30": {state: providers.StateFailed}, // pay at counter / PDAM
	"31": {state: providers.StateFailed}, // exceeds max total bill
	"32": {state: providers.StateFailed}, // must pay all periods
	"33": {state: providers.StateFailed}, // cannot process, try later
	"34": {state: providers.StateFailed}, // bill already paid
	"35": {state: providers.StateFailed}, // other unpaid arrear
	"36": {state: providers.StateFailed}, // past due date, pay at counter
	"37": {state: providers.StateFailed}, // payment failed
	"38": {state: providers.StateFailed}, // payment failed, new request needed
	"40": {state: providers.StateFailed}, // arrear / invoice already paid
	"41": {state: providers.StateFailed}, // cannot be paid at counter
	// IAK knows the inquiry but never received its payment request (status
	// 0). IAK tags it Failed and providers.md §3.6 makes it final: it is
	// the seed's own "not received" answer, not an unknown reference.
	"42":  {state: providers.StateFailed}, // payment request not received
	"93":  {state: providers.StateFailed}, // invalid amount
	"106": {state: providers.StateFailed}, // product temporarily out of service
	"108": {state: providers.StateFailed}, // id cannot be used for this product

	// The reference itself is malformed: no payment can have it.
	"03": {cause: providers.ErrRejected, kind: providers.BadRequest}, // invalid ref_id format

	// Our account or credentials: an operator must act.
	"94":  {cause: providers.ErrAuth}, // service expired
	"100": {cause: providers.ErrAuth}, // invalid signature
	"102": {cause: providers.ErrAuth}, // IP address not whitelisted
	"118": {cause: providers.ErrAuth}, // account suspended

	// Our request was not understood: a client or configuration bug.
	"101": {cause: providers.ErrProtocol}, // invalid command
	"107": {cause: providers.ErrProtocol}, // XML/JSON format error
	"117": {cause: providers.ErrProtocol}, // page not found

	// IAK or the biller is unavailable right now.
	"91":  {cause: providers.ErrUnavailable}, // database connection error
	"92":  {cause: providers.ErrUnavailable}, // general error
	"103": {cause: providers.ErrUnavailable}, // timeout
	"105": {cause: providers.ErrUnavailable}, // misc / biller system error
	"109": {cause: providers.ErrUnavailable}, // system cut-off (PLN 23:00–01:00 WIB)
	"110": {cause: providers.ErrUnavailable}, // system under maintenance

	// Documented for purchases, meaningless for a status check: a
	// duplicate ref_id answer cannot be read as either verdict.
	"11": {cause: providers.ErrUnknownCode},
}

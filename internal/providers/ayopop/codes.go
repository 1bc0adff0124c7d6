package ayopop

import "github.com/statusbridge/statusbridge/internal/providers"

// notFoundCode is the responseCode read as "Ayopop does not know this
// refNumber". Ayopop publishes no full code table, and no public source
// (Ayopop's and Ayoconnect's PPOB pages, kunci115/integ-ayopop-py,
// arkenabd/fuse-integ-ayopop) names a not-found code, so this is our
// choice, not Ayopop's:
//   - 1xx are transaction failures and 2xx pending states (providers.md
//     §1.5), so a code there would collide with a real verdict;
//   - 300 is "inquiry successful", and 301–399 are request or validation
//     errors in the only public mapping (arkenabd's), where "reference
//     unknown" belongs;
//   - codes are usually allocated upward from 301 and x99 is a common
//     catch-all ("undefined error"), so the code least likely to name
//     something else is just below it.
//
// Because "not found" becomes a failed payment once the caller's grace
// ends, a 398 must also carry success false (see parse). Any other 3xx
// stays retryable, so a real not-found code we do not know only delays
// the verdict until the deadline: it never fails a payment.
const notFoundCode = 398

// verdict is what one responseCode means for a status check: a state when
// it answers about the payment, a cause when it says the check failed.
type verdict struct {
	state providers.State
	cause error
}

// classify maps a responseCode to its verdict. Ayopop documents ranges, not
// a table (providers.md §1.4–1.5): 0 success, 299 processing, 300 inquiry
// successful, and "any RC outside 0–399 (timeout, bad gateway, etc.) must
// be treated as processing". The rest follows the third-party range mapping
// (0–99 success, 100–199 failed, 200–299 pending), except that 300–399 are
// never a verdict on a status call. Every cause is Retryable: no
// responseCode alone proves that asking again cannot help.
func classify(rc int) verdict {
	switch {
	case rc == notFoundCode:
		return verdict{state: providers.StateNotFound}
	case rc >= 0 && rc <= 99:
		return verdict{state: providers.StateSuccess}
	case rc >= 100 && rc <= 199:
		return verdict{state: providers.StateFailed}
	case rc >= 200 && rc <= 299:
		return verdict{state: providers.StatePending}
	case rc == 300:
		// "Inquiry successful" answers /bill/check: the request went to, or
		// was read as, the wrong endpoint.
		return verdict{cause: providers.ErrProtocol}
	case rc >= 301 && rc <= 399:
		// Request or validation errors. Whether the payment exists cannot
		// be read from them, so they are retried until the deadline.
		return verdict{cause: providers.ErrRejected}
	case rc == 408, rc >= 500 && rc <= 599:
		// Codes mirroring the HTTP timeout and gateway statuses the docs
		// give as examples of "treat as processing".
		return verdict{cause: providers.ErrUnavailable}
	}
	// Outside 0–399 and not a mirrored HTTP status: still "processing" for
	// Ayopop, so retried, but flagged as a code nobody documents.
	return verdict{cause: providers.ErrUnknownCode}
}

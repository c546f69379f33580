package tunnel

import (
	"errors"
	"fmt"

	"github.com/gorilla/websocket"

	"github.com/gkessh/gkessh/internal/iap"
)

// Close codes of the IAP relay, with IAP Desktop's names: CloseError.Code
// is one of them.
const (
	CodeErrorUnknown             = iap.CodeErrorUnknown
	CodeSIDUnknown               = iap.CodeSIDUnknown
	CodeSIDInUse                 = iap.CodeSIDInUse
	CodeFailedToConnectToBackend = iap.CodeFailedToConnectToBackend
	CodeReauthenticationRequired = iap.CodeReauthenticationRequired
	CodeBadAck                   = iap.CodeBadAck
	CodeInvalidAck               = iap.CodeInvalidAck
	CodeInvalidWebsocketOpcode   = iap.CodeInvalidWebsocketOpcode
	CodeInvalidTag               = iap.CodeInvalidTag
	CodeDestinationWriteFailed   = iap.CodeDestinationWriteFailed
	CodeDestinationReadFailed    = iap.CodeDestinationReadFailed
	CodeInvalidData              = iap.CodeInvalidData
	CodeNotAuthorized            = iap.CodeNotAuthorized
	CodeLookupFailed             = iap.CodeLookupFailed
	CodeLookupFailedReconnect    = iap.CodeLookupFailedReconnect
	CodeFailedToRewind           = iap.CodeFailedToRewind
)

// fatalCode reports close codes after which retrying cannot help.
func fatalCode(code int) bool {
	switch code {
	case CodeSIDUnknown, CodeSIDInUse, CodeFailedToConnectToBackend, CodeNotAuthorized,
		CodeLookupFailed, CodeLookupFailedReconnect, CodeFailedToRewind:
		return true
	}
	return false
}

// CloseError is a close code with which the relay refused a tunnel, or
// refused to resume one, for a reason retrying cannot fix. Its message says
// what to fix.
type CloseError struct {
	Code   int
	Reason string
	Port   int // the target port, named in the firewall advice
}

func (e *CloseError) Error() string {
	msg := fmt.Sprintf("relay closed the tunnel with %d %q", e.Code, e.Reason)
	if h := e.hint(); h != "" {
		msg += ": " + h
	}
	return msg
}

func (e *CloseError) hint() string {
	switch e.Code {
	case CodeNotAuthorized:
		return "you may not tunnel to this instance: grant roles/iap.tunnelResourceAccessor " +
			"on the project or instance, and check IAP access levels"
	case CodeFailedToConnectToBackend:
		rule := "allow-ssh-ingress-from-iap"
		if e.Port != 22 {
			rule = fmt.Sprintf("allow-iap-ingress-tcp-%d", e.Port)
		}
		return fmt.Sprintf("IAP could not reach port %d: check that a firewall rule allows 35.235.240.0/20 on tcp:%d "+
			"(gcloud compute firewall-rules create %s --direction=INGRESS --action=allow --rules=tcp:%d --source-ranges=35.235.240.0/20), "+
			"that the VM is running, and that something listens on port %d", e.Port, e.Port, rule, e.Port, e.Port)
	case CodeLookupFailed:
		return "no such instance: check the instance name, zone and project (a VM still being created also gets this)"
	case CodeLookupFailedReconnect:
		return "the instance was not found on reconnect: it may have been deleted or stopped"
	case CodeSIDUnknown, CodeFailedToRewind:
		return "the relay lost the session, so the connection cannot be resumed: connect again"
	case CodeSIDInUse:
		return "the session is still attached to another websocket: connect again"
	}
	return ""
}

// RateLimitError is the relay's HTTP 429 to a new websocket: IAP throttles
// new tunnels past a rate. The Dialer waits and tries again, Retries
// times, before returning it.
type RateLimitError struct {
	Relay   string // host:port
	Retries int
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("relay %s throttled new tunnels (HTTP 429 Too Many Requests) and still did after %d retries with backoff: open fewer tunnels at once, or try again later",
		e.Relay, e.Retries)
}

// closeErr turns a fatal websocket close into a *CloseError for port.
func closeErr(err error, port int) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && fatalCode(ce.Code) {
		return &CloseError{Code: ce.Code, Reason: ce.Text, Port: port}
	}
	return err
}

// retryable reports whether a broken websocket is worth resuming on a new
// one: transport failures and close codes other than the fatal ones, as IAP
// Desktop does. Protocol violations are not: a relay that broke the
// protocol once will again.
func retryable(err error) bool {
	var (
		ce *CloseError
		pe *iap.ProtocolError
		re *iap.RewindError
	)
	return !errors.As(err, &ce) && !errors.As(err, &pe) && !errors.As(err, &re)
}

package iap

// Close codes of the IAP relay, with IAP Desktop's names. Package tunnel
// exports them to its callers.
const (
	CodeErrorUnknown             = 4000
	CodeSIDUnknown               = 4001
	CodeSIDInUse                 = 4002
	CodeFailedToConnectToBackend = 4003
	CodeReauthenticationRequired = 4004
	CodeBadAck                   = 4005
	CodeInvalidAck               = 4006
	CodeInvalidWebsocketOpcode   = 4007
	CodeInvalidTag               = 4008
	CodeDestinationWriteFailed   = 4009
	CodeDestinationReadFailed    = 4010
	CodeInvalidData              = 4013
	CodeNotAuthorized            = 4033
	CodeLookupFailed             = 4047
	CodeLookupFailedReconnect    = 4051
	CodeFailedToRewind           = 4074
)

//go:build unix

package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Google's APIs answer errors in two shapes (both {"error": {…}}), and
// the emulator answers each API in its own:
//
//   - Compute, an older API, puts its reason in an errors array:
//     {"code":404,"message":M,"errors":[{"message":M,"domain":"global","reason":"notFound"}]}.
//   - The others (OS Login, IAM Credentials, Service Usage, Network
//     Management, Monitoring, Resource Manager v3) answer google.rpc.Status
//     as Google's API design guide shows (https://cloud.google.com/apis/design/errors):
//     {"code":404,"message":M,"status":"NOT_FOUND"}, with details when
//     there are any, and no errors array.
//
// What Google's front end answers itself, before the API sees the call (a
// missing or bad token, a spent rate quota), carries both: Compute's 401
//
//	{"code":401,"message":"Request had invalid authentication credentials. …",
//	 "errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError",
//	            "location":"Authorization","locationType":"header"}],
//	 "status":"UNAUTHENTICATED"}
//
// googleError keeps the fields in the order Google writes them.
type googleError struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Errors  []errorItem `json:"errors,omitempty"`
	Status  string      `json:"status,omitempty"`
	Details []any       `json:"details,omitempty"`
}

// errorItem is one entry of Compute's errors array.
type errorItem struct {
	Message      string `json:"message"`
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Location     string `json:"location,omitempty"`
	LocationType string `json:"locationType,omitempty"`
}

// errorInfo is a google.rpc.ErrorInfo detail, in Google's field order.
type errorInfo struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func newErrorInfo(reason string, metadata map[string]string) errorInfo {
	return errorInfo{"type.googleapis.com/google.rpc.ErrorInfo", reason, "googleapis.com", metadata}
}

// authHelp ends the message of every 401 Google's front end gives a call
// with no usable bearer token.
const authHelp = " Expected OAuth 2 access token, login cookie or other valid authentication credential." +
	" See https://developers.google.com/identity/sign-in/web/devconsole-project."

// msgUnauthenticated is the 401's message for a token Google does not take.
const msgUnauthenticated = "Request had invalid authentication credentials." + authHelp

// apiError is a failed Compute API call; writeAPIError renders it.
type apiError struct {
	code    int
	reason  string
	message string
}

func (e *apiError) Error() string { return e.message }

func notFound(resource string) *apiError {
	return &apiError{http.StatusNotFound, "notFound", fmt.Sprintf("The resource '%s' was not found", resource)}
}

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "invalid", fmt.Sprintf(format, args...)}
}

// errFingerprint is GCE's reply to a metadata set whose fingerprint is not
// the current one; clients (Terraform, iap-desktop) match its message.
var errFingerprint = &apiError{http.StatusPreconditionFailed, "conditionNotMet",
	"Supplied fingerprint does not match current metadata fingerprint."}

// The 401s of a Compute call without a bearer token and with one Google
// does not take. Google's front end answers them before Compute sees the
// call: their errors item has a short message of its own
// (authHeaderMessage) and names the Authorization header, and the body
// carries status UNAUTHENTICATED.
var (
	errLoginRequired = &apiError{http.StatusUnauthorized, "required",
		"Request is missing required authentication credential." + authHelp}
	errInvalidCredentials = &apiError{http.StatusUnauthorized, "authError", msgUnauthenticated}
)

// authHeaderMessage is the errors item's message of those 401s, by reason.
var authHeaderMessage = map[string]string{"required": "Login Required.", "authError": "Invalid Credentials"}

// writeAPIError writes e in Compute's shape.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	item := errorItem{Message: e.message, Domain: "global", Reason: e.reason}
	body := googleError{Code: e.code, Message: e.message}
	if short, ok := authHeaderMessage[e.reason]; ok && e.code == http.StatusUnauthorized {
		item.Message, item.Location, item.LocationType = short, "Authorization", "header"
		body.Status = "UNAUTHENTICATED"
	}
	body.Errors = []errorItem{item}
	writeError(w, body)
}

// writeStatus writes a google.rpc.Status error, as Google's APIs other
// than Compute answer.
func writeStatus(w http.ResponseWriter, code int, status, msg string, details ...any) {
	writeError(w, googleError{Code: code, Message: msg, Status: status, Details: details})
}

// writeRPCError writes e as an API other than Compute answers it: the
// status its HTTP code maps to in google.rpc.Code's mapping (the design
// guide's table), and no errors array.
func writeRPCError(w http.ResponseWriter, e *apiError) {
	writeStatus(w, e.code, rpcStatus[e.code], e.message)
}

// rpcStatus is the google.rpc.Code a status code stands for, for the ones
// the emulator answers.
var rpcStatus = map[int]string{
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusNotFound:            "NOT_FOUND",
	http.StatusConflict:            "ALREADY_EXISTS",
	http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
}

// writeError writes e, with the Bearer challenge Google adds to a 401.
func writeError(w http.ResponseWriter, e googleError) {
	if e.Code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
	}
	writeJSON(w, e.Code, struct {
		Error googleError `json:"error"`
	}{e})
}

// jsonOut is how writeJSON writes an answer, read from the call as
// Google's JSON APIs read it.
//   - Indented unless the call asks for prettyPrint=false
//     (https://cloud.google.com/apis/docs/system-parameters): two spaces a
//     level, "key": value, {} for an empty object, a newline at the end;
//     errors alike. Google's Go clients ask for compact answers, gcloud
//     does not ask.
//   - Compressed with gzip only for a caller that accepts it and names
//     gzip in its User-Agent, as Google's performance tips say
//     (developers.google.com/analytics/devguides/config/mgmt/v3/performance):
//     Go's client sends Accept-Encoding: gzip by itself, and gcloud's
//     User-Agent has no gzip in it.
type jsonOut struct {
	http.ResponseWriter
	indent bool
	gzip   *gzipCache // nil: plain
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w jsonOut) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// googleJSON serves h as one of Google's JSON APIs.
func (s *Server) googleJSON(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(s.jsonWriter(w, r), r) }
}

// jsonWriter is w, to write answers as r asks for them (jsonOut).
func (s *Server) jsonWriter(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	pretty, err := strconv.ParseBool(r.URL.Query().Get("prettyPrint"))
	out := jsonOut{ResponseWriter: w, indent: err != nil || pretty}
	if acceptsGzip(r) && strings.Contains(r.UserAgent(), "gzip") {
		out.gzip = &s.gzip
	}
	return out
}

// acceptsGzip reports whether r's Accept-Encoding lists gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, coding := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(coding, ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") {
				return true
			}
		}
	}
	return false
}

// writeJSON writes v compact, with a newline, or as w says (jsonOut).
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, ok := v.(rawJSON)
	if !ok {
		b = append(mustMarshal(v), '\n')
	}
	out, _ := w.(jsonOut)
	if out.indent {
		var buf bytes.Buffer
		json.Indent(&buf, b, "", "  ") // b is valid JSON
		b = buf.Bytes()
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if out.gzip != nil {
		w.Header().Set("Content-Encoding", "gzip")
		b = out.gzip.compress(b)
	}
	w.WriteHeader(code)
	w.Write(b) // an error here means the client left
}

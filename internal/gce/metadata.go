package gce

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Permissions named in errors, so a 403 says which role is missing.
const (
	PermSetProjectMetadata  = "compute.projects.setCommonInstanceMetadata"
	PermSetInstanceMetadata = "compute.instances.setMetadata"
)

// Instance returns the named instance.
func (c *Client) Instance(ctx context.Context, zone, name string) (*Instance, error) {
	var inst Instance
	path, err := c.instancePath(zone, name)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &inst); err != nil {
		return nil, explain(err, fmt.Sprintf("get instance %s in zone %s of project %s", name, zone, c.ProjectID), "compute.instances.get")
	}
	return &inst, nil
}

// Project returns the client's project, with its common instance metadata.
func (c *Client) Project(ctx context.Context) (*Project, error) {
	var p Project
	path, err := c.projectPath()
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &p); err != nil {
		return nil, explain(err, "get project "+c.ProjectID, "compute.projects.get")
	}
	return &p, nil
}

// SetProjectMetadata replaces the project's common instance metadata and
// waits for the operation. md.Fingerprint must be the one read with it; a
// stale one fails with an error for which IsConflict is true.
func (c *Client) SetProjectMetadata(ctx context.Context, md *Metadata) error {
	what := "set metadata of project " + c.ProjectID
	var op operation
	path, err := c.projectPath("setCommonInstanceMetadata")
	if err == nil {
		err = c.do(ctx, http.MethodPost, path, requestID(), md, &op)
	}
	if err == nil {
		err = c.wait(ctx, "", &op)
	}
	if err != nil {
		return explain(err, what, PermSetProjectMetadata)
	}
	return nil
}

// SetInstanceMetadata replaces an instance's metadata and waits for the
// operation, like SetProjectMetadata.
func (c *Client) SetInstanceMetadata(ctx context.Context, zone, name string, md *Metadata) error {
	what := fmt.Sprintf("set metadata of instance %s in zone %s", name, zone)
	var op operation
	path, err := c.instancePath(zone, name, "setMetadata")
	if err == nil {
		err = c.do(ctx, http.MethodPost, path, requestID(), md, &op)
	}
	if err == nil {
		err = c.wait(ctx, zone, &op)
	}
	if err != nil {
		return explain(err, what, PermSetInstanceMetadata)
	}
	return nil
}

// wait polls a zonal (zone != "") or global operation until it is DONE. The
// wait methods block server-side for up to about two minutes; the short
// growing pause only keeps a server that answers at once from being hammered.
func (c *Client) wait(ctx context.Context, zone string, op *operation) error {
	pause := 100 * time.Millisecond
	for op.Status != "DONE" {
		path, err := c.projectPath("global", "operations", op.Name, "wait")
		if zone != "" {
			path, err = c.projectPath("zones", zone, "operations", op.Name, "wait")
		}
		var next operation
		if err == nil {
			err = c.doWithin(ctx, max(c.timeout(), waitTimeout), http.MethodPost, c.Endpoint+path, nil, nil, &next)
		}
		if err != nil {
			return fmt.Errorf("wait for operation %s: %w", op.Name, err)
		}
		op = &next
		if op.Status == "DONE" {
			break
		}
		if err := sleep(ctx, pause); err != nil {
			return fmt.Errorf("wait for operation %s: %w", op.Name, err)
		}
		pause = min(2*pause, 2*time.Second)
	}
	return operationError(op)
}

// operationError turns a failed operation into an *APIError carrying the
// operation's HTTP status, so IsConflict and the hints treat it like a
// failed call.
func operationError(op *operation) error {
	if op.Error == nil && op.HttpErrorStatusCode == 0 {
		return nil
	}
	e := &APIError{Code: int(op.HttpErrorStatusCode), Message: op.HttpErrorMessage}
	if op.Error != nil {
		var msgs []string
		for _, oe := range op.Error.Errors {
			msgs = append(msgs, oe.Message)
			e.Reasons = append(e.Reasons, oe.Code)
		}
		if m := strings.Join(msgs, "; "); m != "" {
			e.Message = m
		}
	}
	if e.Code == 0 {
		e.Code = http.StatusInternalServerError
	}
	return fmt.Errorf("operation %s failed: %w", op.Name, e)
}

// IsConflict reports whether err is a 412: the metadata changed since it was
// read, so read it again and retry.
func IsConflict(err error) bool { return statusCode(err) == http.StatusPreconditionFailed }

// IsNotFound reports whether err is a 404.
func IsNotFound(err error) bool { return statusCode(err) == http.StatusNotFound }

func statusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// explain wraps err from doing what, stating the cause of the common HTTP
// failures once. GCE's 403 and 404 messages repeat the permission and the
// resource path that perm and what already give, so they are left out then.
// This is the one place API errors get their wording.
func explain(err error, what, perm string) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("gce: %s: %w", what, err)
	}
	var cause string
	switch {
	case ae.Code == http.StatusUnauthorized:
		cause = "not authenticated (401): refresh the access token or run 'gcloud auth login'"
	case IsPolicyDenied(err):
		cause = "refused by the organization's policy (403: " + ae.Message + ")"
	case ae.Code == http.StatusForbidden && (ae.Message == "" || strings.Contains(ae.Message, "'"+perm+"'")):
		cause = "permission denied: needs " + perm + " (403)"
	case ae.Code == http.StatusForbidden:
		if m := requiredPerm().FindStringSubmatch(ae.Message); m != nil {
			cause = "permission denied: needs " + m[1] + " on " + m[2] + " (403)"
		} else {
			cause = "permission denied: needs " + perm + " (403: " + ae.Message + ")"
		}
	case ae.Code == http.StatusNotFound:
		cause = "not found (404)"
	default:
		return fmt.Errorf("gce: %s: %w", what, err)
	}
	return &explainedError{msg: "gce: " + what + ": " + cause, err: err}
}

// IsPolicyDenied reports whether err is Google refusing a call for the
// organization's policy rather than a missing permission: VPC Service
// Controls' 403, through which certificate-based access also guards the
// APIs (a request from a device without its client certificate).
func IsPolicyDenied(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusForbidden &&
		strings.HasPrefix(ae.Message, "Request is prohibited by organization's policy")
}

// requiredPerm is GCE's wording of a 403: the permission and the resource.
var requiredPerm = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Required '([^']+)' permission for '([^']+)'$`) })

// explainedError is an API error in explain's words; it unwraps to the
// *APIError for callers that branch on the status.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

// UpdateProjectMetadata applies edit to the project's metadata with the
// fingerprint read-modify-write of update, retrying on 412.
func (c *Client) UpdateProjectMetadata(ctx context.Context, first *Metadata, edit func(md *Metadata) (bool, error)) (bool, error) {
	read := func(ctx context.Context) (*Metadata, error) {
		p, err := c.Project(ctx)
		if err != nil {
			return nil, err
		}
		return orEmpty(p.CommonInstanceMetadata), nil
	}
	return update(ctx, first, read, c.SetProjectMetadata, edit, backoff)
}

// UpdateInstanceMetadata applies edit to an instance's metadata with the
// fingerprint read-modify-write of update, retrying on 412.
func (c *Client) UpdateInstanceMetadata(ctx context.Context, zone, name string, first *Metadata, edit func(md *Metadata) (bool, error)) (bool, error) {
	read := func(ctx context.Context) (*Metadata, error) {
		inst, err := c.Instance(ctx, zone, name)
		if err != nil {
			return nil, err
		}
		return orEmpty(inst.Metadata), nil
	}
	write := func(ctx context.Context, md *Metadata) error {
		return c.SetInstanceMetadata(ctx, zone, name, md)
	}
	return update(ctx, first, read, write, edit, backoff)
}

// MaxAttempts bounds the read-modify-write attempts of an update. Terraform's
// provider uses 10 for the same 412 loop.
const MaxAttempts = 10

// update is the fingerprint read-modify-write loop. first, when not nil, is
// metadata the caller already read and saves the first GET. edit changes md
// in place and reports whether it changed anything; when it did not, nothing
// is written. On 412 the metadata is read again and edit runs again on the
// fresh copy, after pause(attempt) (backoff: jittered, so that racing
// writers spread out).
func update(ctx context.Context, first *Metadata,
	read func(context.Context) (*Metadata, error),
	write func(context.Context, *Metadata) error,
	edit func(*Metadata) (bool, error),
	pause func(attempt int) time.Duration) (bool, error) {
	md := first
	var err error
	for attempt := 1; ; attempt++ {
		if md == nil {
			if md, err = read(ctx); err != nil {
				return false, err
			}
		}
		md = cloneMetadata(md) // edit must not touch what the caller holds
		changed, err := edit(md)
		if err != nil || !changed {
			return false, err
		}
		err = write(ctx, md)
		if err == nil {
			return true, nil
		}
		if !IsConflict(err) || attempt == MaxAttempts {
			if IsConflict(err) {
				return false, fmt.Errorf("%w (still conflicting after %d attempts: other writers keep changing it; try again)", err, attempt)
			}
			return false, err
		}
		if err := sleep(ctx, pause(attempt)); err != nil {
			return false, err
		}
		md = nil
	}
}

// backoff is the pause before attempt+1: exponential from 50 ms, capped at
// 2 s, with full jitter in [d/2, 3d/2).
func backoff(attempt int) time.Duration {
	d := min(50*time.Millisecond<<(attempt-1), 2*time.Second)
	return d/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func cloneMetadata(md *Metadata) *Metadata {
	c := &Metadata{Kind: md.Kind, Fingerprint: md.Fingerprint, Items: make([]*MetadataItems, len(md.Items))}
	for i, it := range md.Items {
		cp := *it
		c.Items[i] = &cp
	}
	return c
}

func orEmpty(md *Metadata) *Metadata {
	if md == nil {
		return &Metadata{}
	}
	return md
}

// requestID is the query of a set call. GCE applies calls with the same
// requestId once, so a request replayed on the way (by a proxy that retries)
// cannot apply twice.
func requestID() url.Values {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.N(256))
	}
	b[6] = b[6]&0x0f | 0x40 // UUID version 4
	b[8] = b[8]&0x3f | 0x80
	return url.Values{"requestId": {fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])}}
}

// MetadataValue returns the value of key in md and whether it is set.
func MetadataValue(md *Metadata, key string) (string, bool) {
	if md == nil {
		return "", false
	}
	for _, it := range md.Items {
		if it.Key == key {
			if it.Value == nil {
				return "", true
			}
			return *it.Value, true
		}
	}
	return "", false
}

// SetMetadataValue sets key to value in md, in place if the item exists,
// else appended, leaving every other item as it was. An empty value removes
// the item.
func SetMetadataValue(md *Metadata, key, value string) {
	for i, it := range md.Items {
		if it.Key != key {
			continue
		}
		if value == "" {
			md.Items = append(md.Items[:i:i], md.Items[i+1:]...)
		} else {
			it.Value = &value
		}
		return
	}
	if value != "" {
		md.Items = append(md.Items, &MetadataItems{Key: key, Value: &value})
	}
}

// metadataTrue reports whether a metadata flag is on. The guest agents use
// strconv.ParseBool, gcloud a lowercase "true"; ParseBool accepts both.
func metadataTrue(v string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return err == nil && b
}

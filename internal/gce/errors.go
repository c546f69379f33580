package gce

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a caller may want to advise on. They say what is wrong; what to
// do about it is the caller's to say, in its own terms.

// ErrNoProject is New's error when it is given no project.
var ErrNoProject = errors.New("gce: no project")

// NoInstanceError is the error for a name no instance has: Locate's, in
// every zone, or a selection's, in one.
type NoInstanceError struct {
	Name    string
	Project string
	Zone    string // the zone searched; "" when every zone was
	// Near are the names of instances there that Name is a few edits
	// from (suggest.Near), for a caller to offer, when the caller looked
	// for them (Names).
	Near []string
}

func (e *NoInstanceError) Error() string {
	return fmt.Sprintf("gce: no instance named %s in %s", e.Name, e.Where())
}

// Where is where no instance has the name: "project P", or "zone Z of
// project P".
func (e *NoInstanceError) Where() string {
	if e.Zone != "" {
		return "zone " + e.Zone + " of project " + e.Project
	}
	return "project " + e.Project
}

// AmbiguousZoneError is Locate's error when instances of that name live in
// several zones.
type AmbiguousZoneError struct {
	Name  string
	Zones []string
}

func (e *AmbiguousZoneError) Error() string {
	return fmt.Sprintf("gce: instance name %s is in several zones (%s)", e.Name, strings.Join(e.Zones, ", "))
}

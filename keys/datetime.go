package keys

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ParseExpiration reads gcloud's --ssh-key-expiration (ParseDatetime's
// forms), which must be after now and within the longest lifetime, and
// returns the time itself: a line written later still expires then, as
// gcloud's expireOn is the time asked for, not a lifetime.
func ParseExpiration(s string, now time.Time) (time.Time, error) {
	t, err := ParseDatetime(s, now)
	if err != nil {
		return time.Time{}, err
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("%q (%s): must be in the future", s, t.Format(time.RFC3339))
	}
	if t.Sub(now) > maxLifetime {
		return time.Time{}, fmt.Errorf("%q: further off than %v", s, maxLifetime)
	}
	return t, nil
}

// ParseDatetime reads a date and time as gcloud's arg_parsers.Datetime does
// (`gcloud topic datetimes`; times.ParseDateTime: dateutil's parser, then
// an ISO 8601 duration from now), giving the same time for these forms:
//
//   - ISO 8601 and RFC 3339: 2030-08-29T18:52:51.142Z,
//     2030-08-29T10:00:00+02:00 (or +0200, +02), parts left out from the
//     end (2030-08-29T10:49, 2030-08-29T10, 2030-08-29), a space for the T
//     (2030-08-29 10:00), UTC, GMT or Z after a space;
//   - ISO 8601 without separators: 20300829T104941.5-0300, 20300829T1049,
//     20300829, 203008291049;
//   - a time of day, today: 10:36, 10:36:28; and dateutil's hour, minute
//     and second words 1h, 1h30m, 1h30, t30m, 1m, 30s (today at 01:00,
//     01:30, 01:30, 00:30, 00:01, 00:00:30);
//   - a duration from now in gcloud's ISO 8601 grammar, years and months
//     by the calendar: +1d, +P1D, 1d12h, P1W, +PT30M, 90m, 25h.
//
// A time without a zone is in now's location, as gcloud's is local. The
// other forms gcloud's parser takes (month and weekday names, 2030/08/29,
// 08-29-2030, a bare year) are refused rather than read differently.
func ParseDatetime(s string, now time.Time) (time.Time, error) {
	in := strings.TrimSpace(s)
	now = now.Truncate(time.Microsecond) // gcloud's clock has microseconds
	if t, ok, err := parseISO(in, now.Location()); ok {
		return t, err
	}
	if t, ok, err := parseTimeOfDay(in, now); ok {
		return t, err
	}
	if dateutilWords().MatchString(in) && !unitsOfDay().MatchString(in) {
		return time.Time{}, fmt.Errorf("%q: gcloud reads this as a time of day or a duration by rules of its date parser; write 01:30, or +1h30m for a duration", s)
	}
	// A duration is read as given: gcloud trims only for its date parser.
	if in == "" || strings.Trim(in, "0123456789") == "" || !durationLike().MatchString(s) {
		return time.Time{}, fmt.Errorf("%q: want a time like 2030-08-29T10:00:00Z, 2030-08-29 10:00 or 10:00, or a duration from now like +1d or +PT30M", s)
	}
	d, err := parseISODuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %v: want a time like 2030-08-29T10:00:00Z or a duration from now like +1d or +PT30M", s, err)
	}
	return d.after(now), nil
}

// durationLike is what can only be a duration: a sign or P, or units a
// date and time cannot have.
var durationLike = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?i)[+-]?p?[0-9.,ymwdhstun]*$`) })
var (
	isoExtended = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ](\d{1,2})(?::(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?)?` + zonePattern + `$`)
	})
	isoBasic = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(\d{4})(\d{2})(\d{2})(?:[Tt](\d{2})(?:(\d{2})(?:(\d{2})(?:[.,](\d+))?)?)?)?` + zonePattern + `$`)
	})
	isoNoT     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?()()$`) })
	timeOfDay  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?$`) })
	unitsOfDay = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?i)t?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$|^(?i)t?(\d+)h(\d+)$`)
	})
	// dateutilWords are what dateutil's parser reads as a time of day and
	// a duration parser as a duration: only unitsOfDay's are read.
	dateutilWords = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?i)t?[0-9.,hms]+$`) })
)

// zonePattern is an ISO zone (Z, +hh:mm, +hhmm, +hh) or, after a space,
// UTC, GMT or Z.
const zonePattern = `(Z|z|[+-]\d{2}(?::?\d{2})?| ?UTC| ?GMT| Z)?`

// parseISO reads the ISO 8601 forms; ok is false when s is none of them.
func parseISO(s string, loc *time.Location) (t time.Time, ok bool, err error) {
	m := isoExtended().FindStringSubmatch(s)
	if m == nil {
		m = isoBasic().FindStringSubmatch(s)
	}
	if m == nil {
		m = isoNoT().FindStringSubmatch(s)
	}
	if m == nil {
		return time.Time{}, false, nil
	}
	n := make([]int, 6)
	for i := range n {
		if m[i+1] != "" {
			n[i], _ = strconv.Atoi(m[i+1])
		}
	}
	if z := m[8]; z != "" {
		if loc, err = zone(z); err != nil {
			return time.Time{}, true, fmt.Errorf("%q: %v", s, err)
		}
	}
	t, err = date(s, n[0], n[1], n[2], n[3], n[4], n[5], micros(m[7]), loc)
	return t, true, err
}

// parseTimeOfDay reads 10:36[:28] and dateutil's 1h, 1h30m, 1m: today at
// that time. A word out of range (90m, 25h) is no time of day: gcloud
// then reads it as a duration, and so does ParseDatetime.
func parseTimeOfDay(s string, now time.Time) (t time.Time, ok bool, err error) {
	var h, mi, sec, us int
	switch m := timeOfDay().FindStringSubmatch(s); {
	case m != nil:
		h, _ = strconv.Atoi(m[1])
		mi, _ = strconv.Atoi(m[2])
		sec, _ = strconv.Atoi(m[3])
		us = micros(m[4])
	default:
		m = unitsOfDay().FindStringSubmatch(s)
		if m == nil || m[1]+m[2]+m[3]+m[4] == "" {
			return time.Time{}, false, nil
		}
		h, _ = strconv.Atoi(m[1] + m[4])
		mi, _ = strconv.Atoi(m[2] + m[5])
		sec, _ = strconv.Atoi(m[3])
		if h > 23 || mi > 59 || sec > 59 {
			return time.Time{}, false, nil
		}
	}
	t, err = date(s, now.Year(), int(now.Month()), now.Day(), h, mi, sec, us, now.Location())
	return t, true, err
}

// date is time.Date refusing what it would otherwise roll over (Feb 30,
// 24:00), as gcloud does.
func date(s string, y, mo, d, h, mi, sec, us int, loc *time.Location) (time.Time, error) {
	t := time.Date(y, time.Month(mo), d, h, mi, sec, us*1000, loc)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, fmt.Errorf("%q: no such date or time", s)
	}
	return t, nil
}

// micros is a fraction's digits as microseconds, cut as gcloud cuts them.
func micros(frac string) int {
	if frac == "" {
		return 0
	}
	frac = (frac + "000000")[:6]
	n, _ := strconv.Atoi(frac)
	return n
}

// zone reads an ISO offset or UTC, GMT, Z.
func zone(z string) (*time.Location, error) {
	z = strings.TrimSpace(z)
	switch strings.ToUpper(z) {
	case "Z", "UTC", "GMT":
		return time.UTC, nil
	}
	sign := 1
	if z[0] == '-' {
		sign = -1
	}
	digits := strings.ReplaceAll(z[1:], ":", "")
	hh, _ := strconv.Atoi(digits[:2])
	mm := 0
	if len(digits) == 4 {
		mm, _ = strconv.Atoi(digits[2:])
	}
	if hh > 23 || mm > 59 {
		return nil, errors.New("no such zone offset")
	}
	return time.FixedZone("", sign*(hh*3600+mm*60)), nil
}

// after is now plus d as gcloud's Duration.GetRelativeDateTime adds it,
// after its _Normalize: fractions go down to microseconds, then carry up;
// with days, months or years the result is by the calendar, a year
// taking up to 366 of the days first.
func (d isoDuration) after(now time.Time) time.Time {
	y, f := percolate(d.years)
	days := d.days
	if f != 0 {
		days += 365.2422 * f
	}
	mo, f := percolate(d.months)
	if f != 0 {
		days += math.Trunc(365.2422 * f / 12)
	}
	dd, f := percolate(days)
	hours := d.hours + 24*f
	hh, f := percolate(hours)
	minutes := d.minutes + 60*f
	mi, f := percolate(minutes)
	seconds := d.seconds + 60*f
	ss, f := percolate(seconds)
	us := int(1e6 * f)
	c := us / 1e6
	us -= c * 1e6
	ss += c
	c = ss / 60
	ss -= c * 60
	mi += c
	c = mi / 60
	mi -= c * 60
	hh += c
	if dd != 0 || mo != 0 || y != 0 {
		c = hh / 24
		hh -= c * 24
		dd += c
		if dd >= 366 {
			dd -= 366
			y++
		} else if dd <= -366 {
			dd += 366
			y--
		}
		c = int(float64(dd) / 365.2422)
		dd -= int(float64(c) * 365.2422)
		y += c
		c = mo / 12
		mo -= c * 12
		y += c
	}
	return time.Date(now.Year()+y, now.Month()+time.Month(mo), now.Day()+dd,
		now.Hour()+hh, now.Minute()+mi, now.Second()+ss, now.Nanosecond()+us*1000, now.Location())
}

// percolate is iso_duration's: the whole part, and the fraction rounded to
// four places.
func percolate(f float64) (int, float64) {
	whole := math.Trunc(f)
	return int(whole), round4(round4(f) - whole)
}

func round4(f float64) float64 { return math.RoundToEven(f*1e4) / 1e4 }

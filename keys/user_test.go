package keys

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestRemoteUser: gcloud's rule (ssh.py GetDefaultSshUsername, gaia.py
// MapGaiaEmailToDefaultAccountName): the local name when ASCII without
// spaces, whatever else it holds; otherwise one made from the account.
func TestRemoteUser(t *testing.T) {
	for _, tt := range []struct {
		local, account, want, err string
	}{
		{"alice", "x@y", "alice", ""},
		{"Alice.Smith", "", "Alice.Smith", ""},
		{"user@corp.example", "", "user@corp.example", ""}, // ASCII, no space: kept as is
		{"DOMAIN_user-1", "", "DOMAIN_user-1", ""},
		{strings.Repeat("a", 40), "", strings.Repeat("a", 40), ""}, // gcloud does not cut a local name
		{"José", "Jose.Garcia@corp.example", "jose_garcia", ""},
		{"Jane Doe", "jane.doe@example.com", "jane_doe", ""},
		{"José", "José.García@example.com", "josé_garcía", ""}, // Python's isalnum keeps Unicode letters
		{"José", "1user@example.com", "g1user", ""},
		{"José", "_x@example.com", "g_x", ""},
		{"José", "名前@example.com", "名前", ""},
		{"José", strings.Repeat("b", 40) + "@example.com", strings.Repeat("b", 32), ""},
		{"José", "", "", "no gcloud account"},
		{"", "", "", "no gcloud account"},
		{"José", "@example.com", "", "invalid account"},
		// Python's str.lower(): İ is i and a combining dot (then '_'), a
		// word's last Σ is ς; '.' and '\'' are case-ignorable between.
		// Each want is gaia.MapGaiaEmailToDefaultAccountName's (gcloud 528).
		{"José", "İsmail@example.com", "i_smail", ""},
		{"José", "ΟΔΥΣΣΕΥΣ@example.com", "οδυσσευς", ""},
		{"José", "ΣΑΣ.Σ@example.com", "σασ_ς", ""},
		{"José", "ΑΣ'Β@example.com", "ασ_β", ""},
		{"José", "ǅΣ@example.com", "ǆς", ""},
	} {
		got, err := RemoteUser(tt.local, func() (string, error) { return tt.account, nil })
		if got != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("RemoteUser(%q, %q) = %q, %v; want %q, %q", tt.local, tt.account, got, err, tt.want, tt.err)
		}
	}
	// The account is read only when needed.
	boom := func() (string, error) { return "", errors.New("boom") }
	if got, err := RemoteUser("nat", boom); got != "nat" || err != nil {
		t.Errorf("RemoteUser(nat) = %q, %v", got, err)
	}
	if _, err := RemoteUser("Ñat", boom); err == nil {
		t.Error("account error lost")
	}
}

// TestDBName: the account database's DOMAIN\user is user on Windows,
// where gcloud reads USERNAME; elsewhere it is the name pwd gives gcloud.
func TestDBName(t *testing.T) {
	want := map[bool]string{true: "nat", false: `CORP\nat`}[runtime.GOOS == "windows"]
	if got := dbName(`CORP\nat`); got != want {
		t.Errorf("dbName(CORP\\nat) = %q, want %q", got, want)
	}
	if got := dbName("nat"); got != "nat" {
		t.Errorf("dbName(nat) = %q", got)
	}
}

func TestLocalUser(t *testing.T) {
	for _, tt := range []struct{ logname, user, want string }{
		{"fromlogname", "fromuser", "fromlogname"},
		{"", "fromuser", "fromuser"},
		{"", `CORP\nat`, `CORP\nat`}, // as getpass.getuser: the variable as it is, on every OS
	} {
		t.Setenv("LOGNAME", tt.logname)
		t.Setenv("USER", tt.user)
		if got, err := LocalUser(); got != tt.want || err != nil {
			t.Errorf("LogNAME %q USER %q: %q, %v; want %q", tt.logname, tt.user, got, err, tt.want)
		}
	}
}

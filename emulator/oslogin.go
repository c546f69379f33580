//go:build unix

package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// The OS Login API (oslogin.googleapis.com/v1) subset gcloud uses:
// users.getLoginProfile, users.importSshPublicKey and
// users.sshPublicKeys.patch and .delete, for the principal behind the
// bearer token.
// Guest agents of nodes under OS Login install the profile keys of every
// principal whose grant holds compute.instances.osLogin or osAdminLogin.

// osLoginKey is one key in a login profile.
type osLoginKey struct {
	Key                string `json:"key"`
	ExpirationTimeUsec int64  `json:"expirationTimeUsec,omitempty,string"`
	Fingerprint        string `json:"fingerprint"`
	Name               string `json:"name"`
}

// osLoginUsers holds the login profiles' keys, by principal; guarded by
// Server.mu, since the guest agents read them with metadata.
type osLoginUsers map[string]map[string]osLoginKey

// OSLoginUsername is the POSIX user name OS Login gives an account. A
// service account's is sa_ and its numeric unique id (Google's
// guest-oslogin takes a name starting "sa_" for a service account, and
// its homes are /home/sa_1089796971820486495…); anyone else's is the
// e-mail with every character other than a letter or digit made '_'.
func OSLoginUsername(principal string) string {
	if isServiceAccount(principal) {
		return "sa_" + serviceAccountUniqueID(principal)
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(principal))
}

// serveOSLogin answers /v1/users/...
func (s *Server) serveOSLogin(w http.ResponseWriter, r *http.Request) {
	s.apiCalls.Add(1)
	g := s.bearerGrant(r)
	if g == nil {
		writeStatus(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgUnauthenticated)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/v1/users/")
	user, op, _ := strings.Cut(rest, "/")
	user, method, _ := strings.Cut(user, ":")
	if user != g.Principal || g.Principal == "" {
		writeStatus(w, http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("The caller does not have permission on users/%s", user))
		return
	}
	switch {
	case r.Method == http.MethodGet && op == "loginProfile" && method == "":
		writeJSON(w, http.StatusOK, s.loginProfile(g.Principal))
	case r.Method == http.MethodPost && op == "" && method == "importSshPublicKey":
		var req osLoginKey
		if err := decodeBody(r, &req); err != nil {
			writeRPCError(w, err)
			return
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(req.Key))
		if err != nil {
			writeRPCError(w, invalid("Invalid key: %v", err))
			return
		}
		sum := sha256.Sum256(pub.Marshal())
		fp := hex.EncodeToString(sum[:])
		s.mu.Lock()
		if s.oslogin[g.Principal] == nil {
			s.oslogin[g.Principal] = map[string]osLoginKey{}
		}
		s.oslogin[g.Principal][fp] = osLoginKey{Key: strings.TrimSpace(req.Key), ExpirationTimeUsec: req.ExpirationTimeUsec,
			Fingerprint: fp, Name: "users/" + g.Principal + "/sshPublicKeys/" + fp}
		s.metadataChanged()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"loginProfile": s.loginProfile(g.Principal)})
	case r.Method == http.MethodPatch && strings.HasPrefix(op, "sshPublicKeys/") && method == "":
		// users.sshPublicKeys.patch: the fields updateMask names, of
		// which gcloud sends expirationTimeUsec.
		fp := strings.TrimPrefix(op, "sshPublicKeys/")
		var req osLoginKey
		if err := decodeBody(r, &req); err != nil {
			writeRPCError(w, err)
			return
		}
		mask := r.URL.Query().Get("updateMask")
		if mask != "expirationTimeUsec" {
			writeRPCError(w, invalid("Invalid update mask %q: the emulator updates expirationTimeUsec only", mask))
			return
		}
		s.mu.Lock()
		k, ok := s.oslogin[g.Principal][fp]
		if ok {
			k.ExpirationTimeUsec = req.ExpirationTimeUsec
			s.oslogin[g.Principal][fp] = k
			s.metadataChanged()
		}
		s.mu.Unlock()
		if !ok {
			writeRPCError(w, notFound("users/"+g.Principal+"/sshPublicKeys/"+fp))
			return
		}
		writeJSON(w, http.StatusOK, k)
	case r.Method == http.MethodDelete && strings.HasPrefix(op, "sshPublicKeys/") && method == "":
		fp := strings.TrimPrefix(op, "sshPublicKeys/")
		s.mu.Lock()
		_, ok := s.oslogin[g.Principal][fp]
		delete(s.oslogin[g.Principal], fp)
		if ok {
			s.metadataChanged()
		}
		s.mu.Unlock()
		if !ok {
			writeRPCError(w, notFound("users/"+g.Principal+"/sshPublicKeys/"+fp))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	default:
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", "no OS Login method "+r.Method+" "+r.URL.Path)
	}
}

// loginProfile renders principal's profile as the API returns it.
func (s *Server) loginProfile(principal string) map[string]any {
	s.mu.Lock()
	keys := map[string]osLoginKey{}
	for fp, k := range s.oslogin[principal] {
		keys[fp] = k
	}
	s.mu.Unlock()
	name := OSLoginUsername(principal)
	s.mu.Lock()
	if n, ok := s.posixNames[principal]; ok {
		name = n
	}
	s.mu.Unlock()
	uid := 1000 + int(sha256.Sum256([]byte(principal))[0])*100
	return map[string]any{
		"name": principal,
		"posixAccounts": []map[string]any{{
			"primary": true, "username": name, "uid": strconv.Itoa(uid), "gid": strconv.Itoa(uid),
			"homeDirectory": "/home/" + name, "shell": "/bin/bash", "operatingSystemType": "LINUX",
			"accountId": s.cfg.Project, "name": "users/" + principal + "/projects/" + s.cfg.Project,
		}},
		"sshPublicKeys": keys,
	}
}

// osLoginView is what OS Login nodes install at now: the unexpired profile
// keys of principals whose grant may log in, as "user\x00key" lines in a
// stable order (the guest compares views). Call with s.mu held.
func (s *Server) osLoginView(now time.Time) string {
	allowed := map[string]bool{}
	for _, g := range s.tokens {
		if g.Principal != "" && g.live(now) && (g.can("compute.instances.osLogin") || g.can("compute.instances.osAdminLogin")) {
			allowed[g.Principal] = true
		}
	}
	var lines []string
	for p, ks := range s.oslogin {
		if !allowed[p] {
			continue
		}
		for _, k := range ks {
			if k.ExpirationTimeUsec != 0 && time.UnixMicro(k.ExpirationTimeUsec).Before(now) {
				continue
			}
			lines = append(lines, OSLoginUsername(p)+"\x00"+k.Key)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// SetPosixUsername makes the OS Login profile of principal give name as
// its POSIX user, whatever it is: a hostile or broken API answer, for the
// tests of what gkessh does with it. Guest agents go on installing the
// profile's keys for the name OS Login would give.
func (s *Server) SetPosixUsername(principal, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.posixNames == nil {
		s.posixNames = map[string]string{}
	}
	s.posixNames[principal] = name
}

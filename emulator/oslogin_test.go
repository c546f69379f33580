//go:build unix

package emulator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	oslogin "google.golang.org/api/oslogin/v1"

	"github.com/gkessh/gkessh/internal/testkey"
)

// TestOSLoginAPI drives the emulator's OS Login API with Google's official
// oslogin/v1 client: a key imported with an expiry shows in the profile,
// with the POSIX user name, and reaches an OS Login node's sshd only for a
// principal allowed to log in; deleting it takes it off again.
func TestOSLoginAPI(t *testing.T) {
	srv, hs := newTestServer(t, Config{})
	vm, err := srv.AddNode("plain-vm", "us-west1-a")
	if err != nil {
		t.Fatal(err)
	}
	f := useFakeSSHD(t, vm)
	if err := srv.SetProjectMetadata(map[string]*string{"enable-oslogin": ptr("TRUE")}); err != nil {
		t.Fatal(err)
	}
	p := srv.ProjectName()
	srv.AddGrant("alice-token", Grant{Principal: "alice@example.com", Projects: []string{p}, Permissions: []string{"compute.instances.osLogin"}})
	srv.AddGrant("bob-token", Grant{Principal: "bob@example.com", Projects: []string{p}, Permissions: []string{}})
	client := func(tok string) *oslogin.Service {
		svc, err := oslogin.NewService(context.Background(), option.WithEndpoint(hs.URL+"/"),
			option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})))
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	alice, bob := client("alice-token"), client("bob-token")
	ak, bk := testkey.Public(t), testkey.Public(t)
	line := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }

	exp := time.Now().Add(time.Hour)
	res, err := alice.Users.ImportSshPublicKey("users/alice@example.com", &oslogin.SshPublicKey{Key: line(ak), ExpirationTimeUsec: exp.UnixMicro()}).ProjectId(p).Do()
	if err != nil {
		t.Fatal(err)
	}
	pa := res.LoginProfile.PosixAccounts
	if len(pa) != 1 || !pa[0].Primary || pa[0].Username != "alice_example_com" || len(res.LoginProfile.SshPublicKeys) != 1 {
		t.Fatalf("profile after import: %+v %+v", res.LoginProfile, pa)
	}
	var fp string
	for k, v := range res.LoginProfile.SshPublicKeys {
		fp = k
		if v.ExpirationTimeUsec != exp.UnixMicro() || v.Key != line(ak) {
			t.Errorf("stored key %+v", v)
		}
	}
	if _, err := bob.Users.ImportSshPublicKey("users/bob@example.com", &oslogin.SshPublicKey{Key: line(bk)}).Do(); err != nil {
		t.Fatal(err)
	}
	for {
		got := f.nextInstall(t, 10*time.Second)
		if len(got["alice_example_com"]) == 1 {
			if len(got) != 1 {
				t.Errorf("installed %v; bob may not log in", rendered(got))
			}
			break
		}
	}
	if _, err := alice.Users.GetLoginProfile("users/bob@example.com").Do(); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("alice reading bob's profile: %v, want 403", err)
	}
	if _, err := alice.Users.SshPublicKeys.Delete("users/alice@example.com/sshPublicKeys/" + fp).Do(); err != nil {
		t.Fatal(err)
	}
	prof, err := alice.Users.GetLoginProfile("users/alice@example.com").Do()
	if err != nil || len(prof.SshPublicKeys) != 0 {
		t.Fatalf("profile after delete: %+v, %v", prof, err)
	}
	for {
		if got := f.nextInstall(t, 10*time.Second); len(got) == 0 {
			break
		}
	}
}

// TestOSLoginServiceAccountName: OS Login names a service account's POSIX
// user sa_ and its numeric unique id (the key file's client_id), not after
// its e-mail; its home is /home/sa_…, and the guest
// agent installs its key under that name.
func TestOSLoginServiceAccountName(t *testing.T) {
	srv, hs := newTestServer(t, Config{})
	vm, err := srv.AddNode("plain-vm", "us-west1-a")
	if err != nil {
		t.Fatal(err)
	}
	f := useFakeSSHD(t, vm)
	if err := srv.SetProjectMetadata(map[string]*string{"enable-oslogin": ptr("TRUE")}); err != nil {
		t.Fatal(err)
	}
	const robot = "robot@demo-project.iam.gserviceaccount.com"
	keyFile, err := srv.AddServiceAccount(Account{Email: robot}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(keyFile, &kf); err != nil {
		t.Fatal(err)
	}
	if len(kf.ClientID) != 21 || strings.Trim(kf.ClientID, "0123456789") != "" {
		t.Fatalf("client_id %q: want Google's 21-digit unique id", kf.ClientID)
	}
	srv.AddGrant("robot-token", Grant{Principal: robot, Projects: []string{srv.ProjectName()}, Permissions: []string{"compute.instances.osLogin"}})
	svc, err := oslogin.NewService(context.Background(), option.WithEndpoint(hs.URL+"/"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "robot-token"})))
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Users.ImportSshPublicKey("users/"+robot, &oslogin.SshPublicKey{Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testkey.Public(t))))}).Do()
	if err != nil {
		t.Fatal(err)
	}
	want := "sa_" + kf.ClientID
	if pa := res.LoginProfile.PosixAccounts; len(pa) != 1 || pa[0].Username != want || pa[0].HomeDirectory != "/home/"+want {
		t.Fatalf("posixAccounts %+v, want username and home %s", pa, want)
	}
	for {
		if got := f.nextInstall(t, 10*time.Second); len(got[want]) == 1 {
			break
		}
	}
}

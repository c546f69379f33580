package gcloud

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// loadNet writes props as the default configuration and reads its network
// settings with env on top.
func loadNet(t *testing.T, props string, env map[string]string) (*Network, error) {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "configurations", "config_default"), props)
	all := map[string]string{"CLOUDSDK_CONFIG": dir, "HOME": "/home/ann", "USERPROFILE": "/home/ann"}
	for k, v := range env {
		all[k] = v
	}
	c, err := Load(envOf(all))
	if err != nil {
		t.Fatal(err)
	}
	return c.Network()
}

func TestNetworkDefaults(t *testing.T) {
	n, err := loadNet(t, "[core]\nproject = p\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Proxy != nil || n.CAFile.Value != "" || n.ClientCert || n.Endpoints != nil || n.RequestReason.Set() || n.QuotaProject.Set() {
		t.Errorf("unset settings read as set: %+v", n)
	}
	if n.Universe != (Setting{Value: "googleapis.com"}) || n.TokenHost.Value != DefaultTokenHost || n.MTLSTokenHost.Value != DefaultMTLSTokenHost {
		t.Errorf("defaults: universe %+v, token host %+v, mtls %+v", n.Universe, n.TokenHost, n.MTLSTokenHost)
	}
	if !strings.HasSuffix(n.CertConfigFile.Value, "certificate_config.json") || n.CertConfigFile.Set() {
		t.Errorf("certificate config default = %+v", n.CertConfigFile)
	}
	if want := filepath.Join("/home/ann", ".secureConnect", "context_aware_metadata.json"); n.AutoDiscoveryFile.Value != want {
		t.Errorf("auto discovery default = %q, want %q", n.AutoDiscoveryFile.Value, want)
	}
}

func TestNetworkProxy(t *testing.T) {
	cases := []struct {
		name, props string
		env         map[string]string
		want        *Proxy
		err         string
	}{
		{"http", "[proxy]\ntype = http\naddress = proxy.corp\nport = 3128\n", nil,
			&Proxy{Type: "http", Address: "proxy.corp", Port: 3128, RDNS: true, Source: `gcloud configuration "default"`}, ""},
		{"socks5 with credentials, no rdns", "[proxy]\ntype = socks5\naddress = 10.0.0.1\nport = 1080\nusername = ann\npassword = s3cret\nrdns = False\n", nil,
			&Proxy{Type: "socks5", Address: "10.0.0.1", Port: 1080, Username: "ann", Password: "s3cret", Source: `gcloud configuration "default"`}, ""},
		{"from the environment", "", map[string]string{"CLOUDSDK_PROXY_TYPE": "socks4", "CLOUDSDK_PROXY_ADDRESS": "p", "CLOUDSDK_PROXY_PORT": "1080"},
			&Proxy{Type: "socks4", Address: "p", Port: 1080, RDNS: true, Source: "CLOUDSDK_PROXY_TYPE"}, ""},
		{"none", "", nil, nil, ""},
		{"type only", "[proxy]\ntype = http\n", nil, nil, "all or none"},
		{"no port", "[proxy]\ntype = http\naddress = p\n", nil, nil, "all or none"},
		{"unknown type", "[proxy]\ntype = https\naddress = p\nport = 1\n", nil, nil, `proxy/type "https"`},
		{"bad port", "[proxy]\ntype = http\naddress = p\nport = x\n", nil, nil, `proxy/port "x"`},
		{"port out of range", "[proxy]\ntype = http\naddress = p\nport = 70000\n", nil, nil, `proxy/port "70000"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := loadNet(t, tc.props, tc.env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(n.Proxy, tc.want) {
				t.Errorf("proxy = %+v, want %+v", n.Proxy, tc.want)
			}
		})
	}
}

func TestNetworkBool(t *testing.T) {
	for v, want := range map[string]bool{"True": true, "1": true, "on": true, "YES": true, "y": true, "false": false, "0": false, "maybe": false, "": false} {
		n, err := loadNet(t, "", map[string]string{"CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE": v})
		if err != nil {
			t.Fatal(err)
		}
		if n.ClientCert != want || n.ClientCertSource != "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE" {
			t.Errorf("use_client_certificate=%q: %v from %q, want %v", v, n.ClientCert, n.ClientCertSource, want)
		}
	}
}

func TestNetworkEndpoints(t *testing.T) {
	n, err := loadNet(t, "[api_endpoint_overrides]\ncompute = https://compute-psc.p.googleapis.com/\noslogin = http://127.0.0.1:8080/\n",
		map[string]string{"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM": "https://[::1]:9/iam/"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Setting{
		"compute": {"https://compute-psc.p.googleapis.com/", `gcloud configuration "default"`},
		"oslogin": {"http://127.0.0.1:8080/", `gcloud configuration "default"`},
		"iam":     {"https://[::1]:9/iam/", "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM"},
	}
	if !reflect.DeepEqual(n.Endpoints, want) {
		t.Errorf("endpoints = %v, want %v", n.Endpoints, want)
	}
	for _, bad := range []string{"https://compute.example.com", "compute.example.com/", "ftp://x/"} {
		_, err := loadNet(t, "", map[string]string{"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": bad})
		if err == nil || !strings.Contains(err.Error(), "api_endpoint_overrides/compute") {
			t.Errorf("override %q: err = %v, want gcloud's refusal", bad, err)
		}
	}
}

func TestNetworkCAFile(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	write(t, ca, "x")
	n, err := loadNet(t, "", map[string]string{"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": ca})
	if err != nil || n.CAFile != (Setting{ca, "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"}) {
		t.Errorf("CA file = %+v, %v", n, err)
	}
	for _, bad := range []string{"ca.pem", filepath.Join(t.TempDir(), "missing.pem"), t.TempDir()} {
		if _, err := loadNet(t, "", map[string]string{"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": bad}); err == nil || !strings.Contains(err.Error(), "core/custom_ca_certs_file") {
			t.Errorf("CA file %q: err = %v", bad, err)
		}
	}
}

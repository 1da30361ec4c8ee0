package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wsgi-exporter/wsgi_exporter/internal/testcert"
)

// TestWebConfigTLSAndBasicAuth serves /metrics over TLS with basic auth through
// --web.config.file (exporter-toolkit), given through its environment variable.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.New(t, "wsgi_exporter test CA", nil)
	certFile, keyFile := testcert.New(t, "127.0.0.1", ca).Write(t, dir, "server")
	pool := ca.Pool()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  alice: %s\n", certFile, keyFile, hash)
	cfgFile := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	Start(t, "", []string{"WSGI_EXPORTER_WEB_CONFIG_FILE=" + cfgFile}, exporterBin, "--web.listen-address="+addr)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(user, pass string) int {
		req, _ := http.NewRequest("GET", "https://"+addr+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	WaitFor(t, 10*time.Second, "the TLS listener", func() bool { return get("alice", "s3cret") == 200 })
	if code := get("", ""); code != 401 {
		t.Fatalf("no credentials: status %d, want 401", code)
	}
	if code := get("alice", "wrong"); code != 401 {
		t.Fatalf("wrong password: status %d, want 401", code)
	}
	// Plain HTTP to the TLS port is refused, not served.
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served metrics on the TLS listener")
		}
	}
}

package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// LDAPServer is a private OpenLDAP slapd on loopback (ldap:// on Port,
// ldaps:// on TLSPort, STARTTLS on both), in a temp dir with an mdb
// database, stopped by its PID when the test ends (or by Stop).
type LDAPServer struct {
	Port, TLSPort int
	// CAFile is the test CA that signed the server's certificate (for
	// 127.0.0.1 and localhost).
	CAFile string
	// RootDN and RootPW may do anything (ldapadd, ldapmodify).
	RootDN, RootPW string

	process
}

// StartSlapd loads ldif (a file) into a new directory for suffix and
// serves it. schemas are read after the stock core, cosine and
// inetorgperson schemas; access is a slapd.conf file with the database's
// access rules.
func StartSlapd(t testing.TB, suffix string, schemas []string, access string, ldif string) *LDAPServer {
	t.Helper()
	slapd := Need(t, "slapd", "slapd")
	slapadd := Need(t, "slapadd", "slapd")
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &LDAPServer{Port: FreePort(t), TLSPort: FreePort(t), RootDN: "cn=admin," + suffix, RootPW: "secret",
		process: process{stopSignal: syscall.SIGTERM}}
	s.CAFile = testCA(t, dir)
	var conf strings.Builder
	for _, f := range append([]string{"/etc/ldap/schema/core.schema", "/etc/ldap/schema/cosine.schema", "/etc/ldap/schema/inetorgperson.schema"}, schemas...) {
		fmt.Fprintf(&conf, "include %s\n", f)
	}
	fmt.Fprintf(&conf, `pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
database mdb
maxsize 104857600
suffix %[2]q
rootdn %[3]q
rootpw %[4]s
directory %[5]s
index objectClass eq
include %[6]s
`, dir, suffix, s.RootDN, s.RootPW, db, access)
	confFile := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(slapadd, "-q", "-f", confFile, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd -l %s: %v\n%s", ldif, err, out)
	}
	// -d 0: in the foreground, quiet.
	var log strings.Builder
	s.start(t, exec.Command(slapd, "-d", "0", "-f", confFile,
		"-h", fmt.Sprintf("ldap://127.0.0.1:%d/ ldaps://127.0.0.1:%d/", s.Port, s.TLSPort)), &log)
	s.waitReady(t, &log, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
	return s
}

// testCA makes, with openssl, a CA (dir/ca.pem) and a server key and
// certificate it signed for 127.0.0.1 and localhost (dir/server.key,
// dir/server.pem); it returns the CA file.
func testCA(t testing.TB, dir string) string {
	t.Helper()
	openssl := Need(t, "openssl", "openssl")
	ext := filepath.Join(dir, "server.ext")
	if err := os.WriteFile(ext, []byte("subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"}
	for _, args := range [][]string{
		append(append([]string{"req", "-x509"}, ec...), "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=postgate test LDAP CA"),
		append(append([]string{"req"}, ec...), "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"),
		{"x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2", "-days", "2", "-extfile", ext, "-out", "server.pem"},
	} {
		cmd := exec.Command(openssl, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return filepath.Join(dir, "ca.pem")
}

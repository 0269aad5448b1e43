package harness

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// DBServer is a private PostgreSQL or MariaDB server on loopback, in a
// temp dir, stopped by its PID when the test ends (or by Stop).
type DBServer struct {
	Port int
	Dir  string // data directory; PostgreSQL's socket directory
	// Socket is MariaDB's unix socket.
	Socket string
	// Exec runs SQL as the server's superuser, with its command-line client.
	Exec func(sql string) (string, error)

	process
}

// sharedTempDir is a temp dir that another user (the server's) can use.
func sharedTempDir(t testing.TB, prefix string) string {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startDB runs cmd in its own process group and waits until the server
// answers SQL.
func startDB(t testing.TB, s *DBServer, cmd *exec.Cmd, log *strings.Builder) {
	t.Helper()
	s.start(t, cmd, log)
	s.waitReady(t, log, func() error {
		if out, err := s.Exec("SELECT 1"); err != nil {
			return fmt.Errorf("port %d: %v %s", s.Port, err, out)
		}
		return nil
	})
}

// StartPostgres runs a private PostgreSQL (Debian postgresql) as user
// postgres on 127.0.0.1:Port with trust authentication for its superuser
// postgres, and a password user "postgate" (password "secret").
func StartPostgres(t testing.TB) *DBServer {
	t.Helper()
	bin := "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		t.Fatalf("PostgreSQL not found in %s: run `make test`, which installs Debian package postgresql", bin)
	}
	psql := Need(t, "psql", "postgresql-client")
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	dir := filepath.Join(sharedTempDir(t, "postgate-pg-"), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr, initdb.Dir = cred, dir
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s := &DBServer{Port: FreePort(t), Dir: dir, process: process{stopSignal: syscall.SIGINT}} // SIGINT: fast shutdown
	s.Exec = func(sql string) (string, error) {
		cmd := exec.Command(psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", "postgres", "-c", sql)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", dir, "-k", dir, "-p", strconv.Itoa(s.Port), "-h", "127.0.0.1", "-c", "fsync=off")
	cmd.SysProcAttr, cmd.Dir = cred, dir
	var log strings.Builder
	startDB(t, s, cmd, &log)
	if out, err := s.Exec("CREATE USER postgate PASSWORD 'secret'"); err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	return s
}

// StartMariaDB runs a private MariaDB (Debian mariadb-server) on
// 127.0.0.1:Port, its socket in Dir, with a password user "postgate"
// (password "secret") allowed from 127.0.0.1 and over the socket.
func StartMariaDB(t testing.TB) *DBServer {
	t.Helper()
	install := Need(t, "mariadb-install-db", "mariadb-server")
	mariadbd := Need(t, "mariadbd", "mariadb-server")
	client := Need(t, "mariadb", "mariadb-client")
	dir := filepath.Join(sharedTempDir(t, "postgate-mariadb-"), "data")
	if out, err := exec.Command(install, "--no-defaults", "--datadir="+dir, "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "mysqld.sock")
	s := &DBServer{Port: FreePort(t), Dir: dir, Socket: sock, process: process{stopSignal: syscall.SIGTERM}}
	s.Exec = func(sql string) (string, error) {
		out, err := exec.Command(client, "--no-defaults", "-S", sock, "-u", "root", "-N", "-B", "-e", sql).CombinedOutput()
		return string(out), err
	}
	cmd := exec.Command(mariadbd, "--no-defaults", "--datadir="+dir, "--socket="+sock, "--port="+strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve", "--pid-file="+filepath.Join(dir, "mariadbd.pid"),
		"--log-error="+filepath.Join(dir, "error.log"))
	var log strings.Builder
	startDB(t, s, cmd, &log)
	if out, err := s.Exec("CREATE USER 'postgate'@'127.0.0.1' IDENTIFIED BY 'secret'; CREATE USER 'postgate'@'localhost' IDENTIFIED BY 'secret'"); err != nil {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	return s
}

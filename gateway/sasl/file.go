package sasl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// file is postgate's own backend: a password file of "user:hash" lines
// (blank lines and # comments skipped), hashes in bcrypt ($2a$, $2b$,
// $2y$, as htpasswd -B and doveadm pw -s BLF-CRYPT write them, the
// latter with a {BLF-CRYPT} prefix) or argon2id (the PHC string
// $argon2id$v=19$m=..,t=..,p=..$salt$hash, as the argon2 tool writes it).
// The file is read again when it changes; one that no longer loads keeps
// the previous users.
type file struct {
	path string

	mu      sync.Mutex
	users   map[string]string
	modTime time.Time
	size    int64
}

func openFile(path string) (*file, error) {
	if path == "" {
		return nil, errors.New("smtpd_sasl_path is empty: name the password file")
	}
	f := &file{path: path}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *file) load() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	if st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		hash, _, _ = strings.Cut(hash, ":") // passwd-file's further fields
		hash = strings.TrimPrefix(strings.TrimPrefix(hash, "{BLF-CRYPT}"), "{ARGON2ID}")
		if !ok || user == "" || !(isBcrypt(hash) || strings.HasPrefix(hash, "$argon2id$")) {
			return fmt.Errorf("%s:%d: want user:hash with a bcrypt or argon2id hash", f.path, n)
		}
		users[user] = hash
	}
	f.users, f.modTime, f.size = users, st.ModTime(), st.Size()
	return nil
}

var (
	dummyOnce sync.Once
	dummyHash []byte
)

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

func (f *file) Mechanisms(context.Context) ([]string, error) { return []string{"PLAIN", "LOGIN"}, nil }

func (f *file) NewServer(Session) Server { return &fileServer{f: f} }

// check verifies a password; the file is re-read first if it changed.
func (f *file) check(user, pass string) (bool, error) {
	f.mu.Lock()
	err := f.load()
	hash, ok := f.users[user]
	f.mu.Unlock()
	if !ok {
		// Spend the time a known user costs, so a probe cannot tell.
		dummyOnce.Do(func() { dummyHash, _ = bcrypt.GenerateFromPassword([]byte("-"), bcrypt.DefaultCost) })
		bcrypt.CompareHashAndPassword(dummyHash, []byte(pass))
		return false, err
	}
	if isBcrypt(hash) {
		return bcrypt.CompareHashAndPassword([]byte(strings.Replace(hash, "$2y$", "$2a$", 1)), []byte(pass)) == nil, err
	}
	return checkArgon2id(hash, pass)
}

// checkArgon2id verifies a PHC-format argon2id hash.
func checkArgon2id(phc, pass string) (bool, error) {
	// $argon2id$v=19$m=65536,t=3,p=4$salt$hash
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[2] != "v=19" {
		return false, errors.New("bad argon2id hash")
	}
	var m, t, p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return false, errors.New("bad argon2id parameters")
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		}
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || m == 0 || t == 0 || p == 0 || p > 255 {
		return false, errors.New("bad argon2id hash")
	}
	got := argon2.IDKey([]byte(pass), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// fileServer runs PLAIN and LOGIN for the file backend.
type fileServer struct {
	f     *file
	mech  string
	user  string
	state int // LOGIN: 1 waiting for the user name, 2 for the password
}

// The LOGIN mechanism's challenges, "Username:" and "Password:".
var (
	loginUser = base64.StdEncoding.EncodeToString([]byte("Username:"))
	loginPass = base64.StdEncoding.EncodeToString([]byte("Password:"))
)

func (fs *fileServer) Start(ctx context.Context, mech, initial string) Step {
	*fs = fileServer{f: fs.f, mech: strings.ToUpper(mech)}
	if initial != "" && !validBase64(initial) {
		return Step{Status: Fail, Reason: "Invalid base64 data in initial response"}
	}
	switch fs.mech {
	case "PLAIN":
		if initial == "" {
			return Step{Status: More, Challenge: ""}
		}
		return fs.plain(initial)
	case "LOGIN":
		if initial == "" {
			fs.state = 1
			return Step{Status: More, Challenge: loginUser}
		}
		fs.state = 1
		return fs.Next(ctx, initial)
	}
	return Step{Status: Fail, Reason: "Invalid authentication mechanism"}
}

func (fs *fileServer) Next(ctx context.Context, response string) Step {
	if !validBase64(response) {
		return Step{Status: Fail, Reason: "Invalid base64 data in continued response"}
	}
	switch {
	case fs.mech == "PLAIN":
		return fs.plain(response)
	case fs.mech == "LOGIN" && fs.state == 1:
		b, err := base64.StdEncoding.DecodeString(response)
		if err != nil {
			return Step{Status: Fail, Reason: "Invalid base64 data in continued response"}
		}
		fs.user, fs.state = string(b), 2
		return Step{Status: More, Challenge: loginPass}
	case fs.mech == "LOGIN" && fs.state == 2:
		b, err := base64.StdEncoding.DecodeString(response)
		if err != nil {
			return Step{Status: Fail, Reason: "Invalid base64 data in continued response"}
		}
		return fs.verify(fs.user, string(b))
	}
	return Step{Status: Fail, Reason: "Authentication backend error"}
}

// plain checks a PLAIN response: authzid NUL authcid NUL password. An
// authorization identity other than the user is refused.
func (fs *fileServer) plain(resp string) Step {
	b, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return Step{Status: Fail, Reason: "Invalid base64 data in initial response"}
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 {
		return Step{Status: Fail, Reason: "Invalid authentication data"}
	}
	if parts[0] != "" && parts[0] != parts[1] {
		return Step{Status: Fail, Reason: "authorization identity differs from the user", Username: printable(parts[1])}
	}
	return fs.verify(parts[1], parts[2])
}

func (fs *fileServer) verify(user, pass string) Step {
	ok, err := fs.f.check(user, pass)
	switch {
	case ok:
		return Step{Status: Done, Username: printable(user)}
	case err != nil:
		return Step{Status: Temp, Reason: "Authentication backend error", Username: printable(user)}
	}
	return Step{Status: Fail, Reason: "authentication failure", Username: printable(user)}
}

func (fs *fileServer) Close() {}

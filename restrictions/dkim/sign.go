package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// Key is a signing identity: an entry of the signing table, written as
// opendkim's KeyTable writes it, "domain:selector:keyfile".
type Key struct {
	Domain, Selector, File string
}

// ParseKey reads "domain:selector:keyfile".
func ParseKey(s string) (Key, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Key{}, fmt.Errorf("%q is not domain:selector:keyfile", s)
	}
	return Key{Domain: strings.ToLower(parts[0]), Selector: parts[1], File: parts[2]}, nil
}

// Keys reads private keys from their files and keeps them, read again
// when a file changes (as the tables that name them are).
type Keys struct {
	mu sync.Mutex
	m  map[string]loadedKey
}

type loadedKey struct {
	mod    time.Time
	size   int64
	signer crypto.Signer
}

// Signer gives the key in file: an RSA key (PKCS #1 "RSA PRIVATE KEY",
// as older opendkim-genkey writes, or PKCS #8) or an Ed25519 key
// (PKCS #8), PEM-encoded.
func (k *Keys) Signer(file string) (crypto.Signer, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.m[file]; ok && l.mod.Equal(st.ModTime()) && l.size == st.Size() {
		return l.signer, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	signer, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if k.m == nil {
		k.m = map[string]loadedKey{}
	}
	k.m[file] = loadedKey{mod: st.ModTime(), size: st.Size(), signer: signer}
	return signer, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("no PEM-encoded key")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		switch key := key.(type) {
		case *rsa.PrivateKey:
			return key, nil
		case ed25519.PrivateKey:
			return key, nil
		}
		return nil, fmt.Errorf("a %T key, not RSA or Ed25519", key)
	}
	return nil, fmt.Errorf("a PEM %q block, not a private key", block.Type)
}

// Sign signs msg (header and body, CRLF line ends) with signer as key
// says, relaxed/relaxed, over the fields named in headers; it returns the
// DKIM-Signature field to prepend, with its CRLF.
func Sign(msg io.Reader, key Key, signer crypto.Signer, headers []string) (string, error) {
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 key.Domain,
		Selector:               key.Selector,
		Signer:                 signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             headers,
	})
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(s, msg); err != nil {
		s.Close()
		return "", err
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	return s.Signature(), nil
}

// SignedHeaders are the fields of names (the message's field names, in
// order) that headers lists, each as often as it occurs, so the signature
// covers every instance and lists no absent field.
func SignedHeaders(names, headers []string) []string {
	var out []string
	for _, h := range headers {
		for _, n := range names {
			if strings.EqualFold(n, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

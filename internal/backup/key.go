package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/tink-crypto/tink-go/v2/streamingaead/subtle"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// Encryption names the streaming AEAD in manifests: Tink's AES256_GCM_HKDF_1MB
// (AES-256-GCM, keys derived per object with HKDF-SHA256 from the main key
// and a random salt, 1 MiB segments each authenticated, the last one marked
// so that truncation is detected).
const Encryption = "tink-streaming-aead/AES256_GCM_HKDF_1MB"

// segmentSize is the ciphertext segment size of Encryption.
const segmentSize = 1 << 20

// minKeyBytes is the least key material accepted (AES-256).
const minKeyBytes = 32

// Key is a backup encryption key loaded from a file. Its material never
// leaves this type: it prints as its ID.
type Key struct {
	id   string
	aead *subtle.AESGCMHKDF
}

// LoadKey reads a key file: 32 or more random bytes, either raw or written
// as hex (64 characters) or base64 (`openssl rand -base64 32`). One trailing
// newline is ignored. Errors name the file, never its contents.
func LoadKey(path string) (*Key, error) {
	raw, err := config.ReadSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	material := decodeKey(raw)
	if len(material) < minKeyBytes {
		return nil, fmt.Errorf("backup key %s holds %d bytes of key material, want at least %d (generate one with: openssl rand -base64 32)", path, len(material), minKeyBytes)
	}
	return newKey(material)
}

// newKey builds a Key from key material.
func newKey(material []byte) (*Key, error) {
	aead, err := subtle.NewAESGCMHKDF(material, "SHA256", 32, segmentSize, 0)
	if err != nil {
		return nil, fmt.Errorf("backup key: %v", err)
	}
	return &Key{id: keyID(material), aead: aead}, nil
}

// decodeKey turns a key file's bytes into key material.
func decodeKey(raw []byte) []byte {
	s := bytes.TrimSuffix(raw, []byte("\n"))
	s = bytes.TrimSuffix(s, []byte("\r"))
	if len(s) == 64 {
		if b, err := hex.DecodeString(string(s)); err == nil {
			return b
		}
	}
	if b, err := base64.StdEncoding.DecodeString(string(s)); err == nil && len(b) >= minKeyBytes {
		return b
	}
	return s
}

// keyID is a public fingerprint of key material, recorded in manifests so a
// restore can say which key a backup needs.
func keyID(material []byte) string {
	h := sha256.New()
	h.Write([]byte("drguard backup key id\x00"))
	h.Write(material)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ID returns the key's fingerprint, e.g. "sha256:0123456789abcdef".
func (k *Key) ID() string { return k.id }

// String returns the key's ID, never its material.
func (k *Key) String() string { return "backup key " + k.id }

// encrypt returns a writer that encrypts into w; aad binds the ciphertext
// to one backup. Close writes the final segment.
func (k *Key) encrypt(w io.Writer, aad []byte) (io.WriteCloser, error) {
	return k.aead.NewEncryptingWriter(w, aad)
}

// decrypt returns a reader of r's plaintext. Reads fail on any tampered,
// reordered or missing segment, and at the end of a truncated stream.
func (k *Key) decrypt(r io.Reader, aad []byte) (io.Reader, error) {
	return k.aead.NewDecryptingReader(r, aad)
}

// associatedData binds a backup's ciphertext to its name and ID, so an
// object copied under another backup's manifest does not decrypt.
func associatedData(backup, id string) []byte {
	return []byte("drguard/backup/v1\x00" + backup + "\x00" + id)
}

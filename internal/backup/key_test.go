package backup

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestLoadKeyFormats(t *testing.T) {
	material := bytes.Repeat([]byte{0xab}, 32)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	want := keyID(material)
	for name, data := range map[string][]byte{
		"raw":    material,
		"hex":    []byte(hex.EncodeToString(material) + "\n"),
		"base64": []byte("q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n"),
	} {
		k, err := LoadKey(write(name, data))
		if err != nil || k.ID() != want {
			t.Errorf("%s: key %v, err %v; want id %s", name, k, err, want)
		}
	}
	_, err := LoadKey(write("short", []byte("too-short-secret\n")))
	if err == nil || !strings.Contains(err.Error(), "want at least 32") || strings.Contains(err.Error(), "too-short-secret") {
		t.Errorf("short key: %v", err)
	}
	if k, _ := LoadKey(write("raw2", material)); k.String() != "backup key "+want {
		t.Errorf("String() = %q reveals more than the id", k.String())
	}
}

// sealed compresses and encrypts data as the pipeline does.
func sealed(t *testing.T, k *Key, data, aad []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := k.encrypt(&buf, aad)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := zstd.NewWriter(enc, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAEADRefusesWhatTheManifestCannotCatch covers an attacker who also
// rewrites the manifest's size and sha256: the AEAD alone must refuse.
func TestAEADRefusesWhatTheManifestCannotCatch(t *testing.T) {
	k, err := newKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3*segmentSize+12345)
	_, _ = rand.Read(data) // incompressible: several segments
	aad := associatedData("app", "id1")
	obj := sealed(t, k, data, aad)

	var out memFile
	if err := decryptTo(&out, bytes.NewReader(obj), k, aad); err != nil || !bytes.Equal(out.b, data) {
		t.Fatalf("round trip: %v", err)
	}
	header := k.aead.HeaderLength()
	flipped := append([]byte(nil), obj...)
	flipped[len(flipped)/2] ^= 0x80
	other, _ := newKey(bytes.Repeat([]byte{8}, 32))
	cases := map[string]struct {
		obj []byte
		key *Key
		aad []byte
	}{
		"flipped byte":                {flipped, k, aad},
		"cut at a segment boundary":   {obj[:segmentSize-header+segmentSize], k, aad},
		"cut inside a segment":        {obj[:len(obj)-100], k, aad},
		"appended bytes":              {append(append([]byte(nil), obj...), 1, 2, 3), k, aad},
		"another backup's object":     {obj, k, associatedData("app", "id2")},
		"another key":                 {obj, other, aad},
		"empty":                       {nil, k, aad},
		"header only":                 {obj[:header], k, aad},
		"last segment dropped":        {obj[:segmentSize-header+2*segmentSize], k, aad},
		"segments reordered (swap 1)": {swapSegments(obj, header), k, aad},
	}
	for name, c := range cases {
		err := decryptTo(discardAt{}, bytes.NewReader(c.obj), c.key, c.aad)
		var ir *integrityReason
		if !errors.As(err, &ir) {
			t.Errorf("%s: want an integrity failure, got %v", name, err)
		}
	}
}

// swapSegments swaps the second and third ciphertext segments.
func swapSegments(obj []byte, header int) []byte {
	out := append([]byte(nil), obj...)
	first := segmentSize - header
	a := out[first : first+segmentSize]
	b := append([]byte(nil), out[first+segmentSize:first+2*segmentSize]...)
	copy(out[first+segmentSize:], a)
	copy(out[first:], b)
	return out
}

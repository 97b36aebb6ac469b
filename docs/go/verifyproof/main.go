// verifyproof checks that a leaf is entry INDEX of a log whose checkpoint is signed by the log's
// key, using a C2SP tlog-proof@v1 file and Go's own signed-note and transparency-log packages.
//
// Usage: verifyproof VERIFIER-KEY INDEX LEAF-FILE TLOG-PROOF-FILE
//
// Exit status: 0 when the leaf is proven, 1 when it is not, 2 on a usage error.
package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: verifyproof VERIFIER-KEY INDEX LEAF-FILE TLOG-PROOF-FILE")
		os.Exit(2)
	}
	tree, err := verify(os.Args[1], os.Args[2], os.Args[3], os.Args[4])
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAILED: %s: %v\n", os.Args[4], err)
		os.Exit(1)
	}
	fmt.Printf("entry %s is in the tree of size %d, root %s\n", os.Args[2], tree.N, tree.Hash)
}

// verify returns the signed tree that proofFile proves leafFile to be entry index of.
func verify(vkey, index, leafFile, proofFile string) (tlog.Tree, error) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := parseDecimal(index)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("index: %w", err)
	}
	leaf, err := readFile(leafFile)
	if err != nil {
		return tlog.Tree{}, err
	}
	data, err := readFile(proofFile)
	if err != nil {
		return tlog.Tree{}, err
	}
	proof, err := parseTlogProof(data)
	if err != nil {
		return tlog.Tree{}, err
	}
	if proof.index != n {
		return tlog.Tree{}, fmt.Errorf("the proof is for entry %d, not %d", proof.index, n)
	}
	// The extra line is unauthenticated: it must not disagree with the leaf being proven.
	if proof.extra != nil && !bytes.Equal(proof.extra, leaf) {
		return tlog.Tree{}, errors.New("its extra line is not the leaf given")
	}
	tree, err := openCheckpoint(proof.checkpoint, verifier)
	if err != nil {
		return tlog.Tree{}, err
	}
	if err := tlog.CheckRecord(proof.hashes, tree.N, tree.Hash, n, tlog.RecordHash(leaf)); err != nil {
		return tlog.Tree{}, fmt.Errorf("the leaf is not entry %d of the signed tree: %w", n, err)
	}
	return tree, nil
}

// tlogProof is a parsed c2sp.org/tlog-proof@v1 file.
type tlogProof struct {
	extra      []byte // nil when the file has no extra line
	index      int64
	hashes     tlog.RecordProof
	checkpoint []byte // the signed note, verbatim
}

// parseTlogProof parses a c2sp.org/tlog-proof@v1 file strictly; it checks no signature.
func parseTlogProof(data []byte) (tlogProof, error) {
	var proof tlogProof
	head, checkpoint, found := bytes.Cut(data, []byte("\n\n"))
	if !found || len(checkpoint) == 0 {
		return proof, errors.New("not a tlog-proof: no checkpoint after an empty line")
	}
	proof.checkpoint = checkpoint
	lines := strings.Split(string(head), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		return proof, errors.New("not a tlog-proof: the first line is not c2sp.org/tlog-proof@v1")
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := decodeBase64(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return proof, fmt.Errorf("extra line: %w", err)
		}
		proof.extra = extra
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return proof, errors.New("not a tlog-proof: no index line")
	}
	index, err := parseDecimal(strings.TrimPrefix(lines[0], "index "))
	if err != nil {
		return proof, fmt.Errorf("index line: %w", err)
	}
	proof.index = index
	// Go's tree of at most 2^63 - 1 entries has inclusion paths of at most 63 hashes.
	if len(lines)-1 > 63 {
		return proof, errors.New("more than 63 proof hashes")
	}
	for _, line := range lines[1:] {
		hash, err := decodeHash(line)
		if err != nil {
			return proof, fmt.Errorf("proof line: %w", err)
		}
		proof.hashes = append(proof.hashes, hash)
	}
	return proof, nil
}

// openCheckpoint verifies the log's signature on a c2sp.org/tlog-checkpoint note, then reads it.
func openCheckpoint(signed []byte, verifier note.Verifier) (tlog.Tree, error) {
	// Open ignores signature lines of other keys (witness cosignatures) and fails unless the
	// log's own signature is present and verifies.
	opened, err := note.Open(signed, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint: %w", err)
	}
	// Exactly origin, size and root: we write no extension lines and accept none.
	lines := strings.Split(opened.Text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return tlog.Tree{}, errors.New("checkpoint: not exactly three lines")
	}
	if lines[0] != verifier.Name() {
		return tlog.Tree{}, fmt.Errorf("checkpoint: origin %q, not %q", lines[0], verifier.Name())
	}
	size, err := parseDecimal(lines[1])
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint size: %w", err)
	}
	root, err := decodeHash(lines[2])
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint root: %w", err)
	}
	return tlog.Tree{N: size, Hash: root}, nil
}

// readFile returns a file's bytes, refusing files over a mebibyte (ours are a few kilobytes).
func readFile(path string) ([]byte, error) {
	const limit = 1 << 20
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// parseDecimal parses a non-negative decimal without a sign or leading zeros.
func parseDecimal(text string) (int64, error) {
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != text {
		return 0, fmt.Errorf("%q is not a decimal number", text)
	}
	return n, nil
}

// decodeBase64 decodes canonical padded standard base64 (RFC 4648 section 4).
func decodeBase64(text string) ([]byte, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != text {
		return nil, fmt.Errorf("%.24q is not canonical base64", text)
	}
	return raw, nil
}

// decodeHash decodes the base64 of a 32-byte SHA-256 hash.
func decodeHash(text string) (tlog.Hash, error) {
	var hash tlog.Hash
	raw, err := decodeBase64(text)
	if err != nil {
		return hash, err
	}
	if len(raw) != tlog.HashSize {
		return hash, fmt.Errorf("a hash of %d bytes, not %d", len(raw), tlog.HashSize)
	}
	copy(hash[:], raw)
	return hash, nil
}

package neon

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// endlessReader returns spaces forever, a few kilobytes at a time, like a slow hostile server.
type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) {
	n := min(len(p), 8<<10)
	for i := range n {
		p[i] = ' '
	}
	return n, nil
}

// TestReadBody_MemoryBound measures readBody alone: an honest Content-Length costs one buffer
// of its size; an endless body of unknown length costs at most twice the limit in total
// (buffers of ⌈(limit+1)/2^k⌉, so at any moment at most 1.5 × the limit is held); a body that
// runs past its Content-Length is refused.
func TestReadBody_MemoryBound(t *testing.T) {
	const limit = 3<<20 + 12345 // not a power of two: the ladder must still end on the limit
	body := bytes.Repeat([]byte("x"), 2<<20)
	r := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(5, func() {
		r.Reset(body)
		if b, err := readBody(r, int64(len(body)), limit); err != nil || len(b) != len(body) {
			t.Fatalf("honest body: %d bytes, %v", len(b), err)
		}
	})
	if allocs != 1 {
		t.Errorf("an honest body took %v allocations, want 1", allocs)
	}

	var err error
	got := AllocatedForTest(func() { _, err = readBody(endlessReader{}, -1, limit) })
	if !errors.Is(err, errBodyTooLarge) || !errors.Is(err, ErrBadResponse) {
		t.Fatalf("endless body: %v", err)
	}
	if got > 2*limit+64<<10 {
		t.Errorf("an endless body allocated %d bytes for a %d-byte limit", got, limit)
	}

	for _, n := range []int{0, 1, firstBuffer, firstBuffer + 1, limit} {
		b, err := readBody(io.LimitReader(endlessReader{}, int64(n)), -1, limit)
		if err != nil || len(b) != n || cap(b) > limit+1 {
			t.Errorf("unknown length %d: got %d bytes (cap %d), %v", n, len(b), cap(b), err)
		}
	}
	if _, err := readBody(io.LimitReader(endlessReader{}, limit+1), -1, limit); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("limit+1 bytes of unknown length: %v", err)
	}
	if _, err := readBody(strings.NewReader("abcdef"), 3, limit); err == nil || !strings.Contains(err.Error(), "longer than its Content-Length") {
		t.Errorf("body past its Content-Length: %v", err)
	}
	if _, err := readBody(strings.NewReader(""), limit+1, limit); !errors.Is(err, errBodyTooLarge) {
		t.Errorf("claim above the limit: %v", err)
	}
}

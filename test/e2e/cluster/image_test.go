package cluster

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteOCIArchiveSize: the size reported is the image's, not a guess:
// uncompressed holds the whole binary plus the skeleton, and a binary of
// random-looking bytes cannot compress below its own size by much.
func TestWriteOCIArchiveSize(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7919 + i/251) // a pattern gzip does not fold away
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "img.oci.tar")
	size, err := WriteOCIArchive(Image{Name: "aerostat.local/x:t", Binary: bin, Entrypoint: "/usr/local/bin/x", User: "65532:65532"}, archive)
	if err != nil {
		t.Fatal(err)
	}
	if size.Uncompressed <= int64(len(data)) || size.Uncompressed > int64(len(data))+64<<10 {
		t.Errorf("uncompressed %d bytes, want just over the %d-byte binary", size.Uncompressed, len(data))
	}
	if size.Compressed <= 0 || size.Compressed >= size.Uncompressed+4<<10 {
		t.Errorf("compressed %d bytes, want between 0 and about the uncompressed %d", size.Compressed, size.Uncompressed)
	}
	// The archive's blobs hold the compressed layer: the pull size is
	// the blobs' total, less the index files.
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blobs int64
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "blobs/") && h.Typeflag == tar.TypeReg {
			blobs += h.Size
		}
	}
	if blobs != size.Compressed {
		t.Errorf("archive blobs total %d bytes, reported compressed size %d", blobs, size.Compressed)
	}
}

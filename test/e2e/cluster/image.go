package cluster

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image describes an image built from one static binary, the way the
// project's Dockerfile lays it out on distroless/static: the binary at
// Entrypoint, a nonroot user (65532) in /etc/passwd, a world-writable /tmp.
type Image struct {
	// Name is the full reference, e.g. aerostat.local/aerostat:e2e.
	Name string
	// Binary is the path of the static binary on this machine.
	Binary string
	// Entrypoint is where the binary lands in the image.
	Entrypoint string
	// User is the image's USER, e.g. "65532:65532".
	User   string
	Labels map[string]string
}

// BuildStatic builds a Go main package as the Dockerfile does (static:
// CGO_ENABLED=0, stripped) into out. Unlike the Dockerfile it keeps the
// source paths (no -trimpath): -trimpath and a different CGO_ENABLED each
// change the compile cache key of every package, std included, so such a
// build compiled the whole tree a second time (19 minutes under load);
// built like `go test` under make (CGO_ENABLED=0) it only links. The image
// layout, entrypoint and user do not depend on it.
//
// tags are build tags (agentonly: the node agent's build, the Dockerfile's
// agent target); they change only the packages they select, so the rest
// of the tree is shared with the untagged build.
func BuildStatic(dir, pkg, out, ldflags string, tags ...string) error {
	cmd := exec.Command("go", "build", "-tags", strings.Join(tags, ","), "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Size is what an image weighs: Compressed is what a node pulls from a
// registry (manifest, config and gzip-compressed layers), Uncompressed what
// it unpacks to (the layers' tar streams).
type Size struct {
	Compressed, Uncompressed int64
}

func (s Size) String() string {
	return fmt.Sprintf("%.1f MB compressed, %.1f MB uncompressed", float64(s.Compressed)/1e6, float64(s.Uncompressed)/1e6)
}

// WriteOCIArchive writes img as an OCI image layout in a tar archive at
// path, annotated so that `ctr images import` names it img.Name, and
// returns the image's size.
func WriteOCIArchive(img Image, path string) (Size, error) {
	layer, err := rootfsLayer(img)
	if err != nil {
		return Size{}, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	withLayer, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return Size{}, fmt.Errorf("adding the layer of %s: %w", img.Name, err)
	}
	cfg, err := withLayer.ConfigFile()
	if err != nil {
		return Size{}, fmt.Errorf("reading the config of %s: %w", img.Name, err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint = []string{img.Entrypoint}
	cfg.Config.User = img.User
	cfg.Config.Labels = img.Labels
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	final, err := mutate.ConfigFile(withLayer, cfg)
	if err != nil {
		return Size{}, fmt.Errorf("setting the config of %s: %w", img.Name, err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), "oci-layout-")
	if err != nil {
		return Size{}, fmt.Errorf("making the layout dir: %w", err)
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return Size{}, fmt.Errorf("writing the OCI layout of %s: %w", img.Name, err)
	}
	if err := lp.AppendImage(final,
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
		layout.WithAnnotations(map[string]string{
			"io.containerd.image.name":          img.Name,
			"org.opencontainers.image.ref.name": img.Name,
		})); err != nil {
		return Size{}, fmt.Errorf("adding %s to the OCI layout: %w", img.Name, err)
	}
	size, err := imageSize(final)
	if err != nil {
		return Size{}, fmt.Errorf("sizing %s: %w", img.Name, err)
	}
	return size, tarDir(dir, path)
}

// imageSize adds up what a pull of img transfers and what it unpacks to.
func imageSize(img v1.Image) (Size, error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return Size{}, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return Size{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return Size{}, err
	}
	s := Size{Compressed: int64(len(manifest) + len(config))}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return Size{}, err
		}
		s.Compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			return Size{}, err
		}
		u, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return Size{}, err
		}
		s.Uncompressed += u
	}
	return s, nil
}

// rootfsLayer is the image's only layer: the distroless-like skeleton and
// the binary.
func rootfsLayer(img Image) (v1.Layer, error) {
	bin, err := os.ReadFile(img.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", img.Binary, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := []struct {
		name string
		mode int64
	}{{"etc/", 0o755}, {"tmp/", 0o1777}, {"home/", 0o755}, {"home/nonroot/", 0o700}, {"usr/", 0o755}, {"usr/local/", 0o755}, {"usr/local/bin/", 0o755}}
	for _, d := range dirs {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: epoch}
		if d.name == "home/nonroot/" {
			h.Uid, h.Gid = 65532, 65532
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{img.Entrypoint[1:], 0o755, bin},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// tarDir writes the files under dir into a tar archive at path.
func tarDir(dir, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("archiving %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archiving %s: %w", dir, err)
	}
	return f.Close()
}

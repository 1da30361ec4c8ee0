package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// podman runs podman with args and returns its standard output; it fails the test on error.
func podman(t testing.TB, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("podman", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// podmanID returns the ID of the local image or manifest list named name, "" when there is
// none. (podman image inspect of a manifest list answers with an image of the list.)
func podmanID(t testing.TB, name string) string {
	t.Helper()
	ids := strings.Fields(podman(t, "images", "--no-trunc", "--format", "{{.ID}}", "--filter", "reference="+name))
	if len(ids) > 1 {
		t.Fatalf("%d images named %s: %q", len(ids), name, ids)
	}
	if len(ids) == 0 {
		return ""
	}
	return strings.TrimPrefix(ids[0], "sha256:")
}

// imageInfo is what `podman image inspect` says of an image, the part checked here.
type imageInfo struct {
	ID           string
	Digest       string
	Os           string
	Architecture string
	Config       struct {
		User         string
		Entrypoint   []string
		Cmd          []string
		ExposedPorts map[string]struct{}
		Labels       map[string]string
	}
}

// checkImage builds the images with `make docker-test` (on a local stand-in of the busybox
// base where quay.io cannot be reached) under names of this run only, removes them (by ID)
// when the test ends, and checks their configuration, the manifest list and the binary in
// them, which it runs outside any container against a real uWSGI.
func checkImage(t *testing.T, rt *releaseTree) {
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	repo := "localhost/wsgi-exporter-e2e-" + hex.EncodeToString(suffix)
	tag := "v" + rt.version
	list := repo + "/wsgi-exporter:" + tag
	image := func(arch string) string { return repo + "/wsgi-exporter-linux-" + arch + ":" + tag }
	t.Cleanup(func() {
		// The list first, then each image before the stand-in base it was built on.
		if id := podmanID(t, list); id != "" {
			podman(t, "manifest", "rm", id)
		}
		for _, a := range releaseArchs {
			for _, name := range []string{image(a), repo + "/busybox-standin-linux-" + a + ":latest"} {
				if id := podmanID(t, name); id != "" {
					podman(t, "rmi", id)
				}
			}
		}
	})
	out := rt.make(t, "docker-test", "DOCKER_ENGINE=podman", "DOCKER_REPO="+repo, "DOCKER_ARCHS="+strings.Join(releaseArchs, " "))
	t.Logf("make docker-test:\n%s", out)

	var digests []string
	for _, a := range releaseArchs {
		var infos []imageInfo
		if err := json.Unmarshal([]byte(podman(t, "image", "inspect", image(a))), &infos); err != nil || len(infos) != 1 {
			t.Fatalf("podman image inspect %s: %v (%d images)", image(a), err, len(infos))
		}
		in := infos[0]
		if base := in.Config.Labels["io.wsgi-exporter.base-standin"]; base != "" {
			t.Logf("!!! %s is built on a LOCAL STAND-IN base (%s): quay.io cannot be reached from here", image(a), base)
		}
		if in.Os != "linux" || in.Architecture != a {
			t.Errorf("%s: platform %s/%s, want linux/%s", image(a), in.Os, in.Architecture, a)
		}
		if in.Config.User != "nobody" {
			t.Errorf("%s: user %q, want nobody", image(a), in.Config.User)
		}
		if want := []string{"/bin/wsgi_exporter"}; !slices.Equal(in.Config.Entrypoint, want) || len(in.Config.Cmd) != 0 {
			t.Errorf("%s: entrypoint %q cmd %q, want %q and no cmd", image(a), in.Config.Entrypoint, in.Config.Cmd, want)
		}
		if _, ok := in.Config.ExposedPorts["10133/tcp"]; !ok || len(in.Config.ExposedPorts) != 1 {
			t.Errorf("%s: exposed ports %v, want 10133/tcp only", image(a), in.Config.ExposedPorts)
		}
		for k, v := range map[string]string{
			"org.opencontainers.image.version":  rt.version,
			"org.opencontainers.image.revision": rt.revision,
			"org.opencontainers.image.source":   "https://github.com/wsgi-exporter/wsgi_exporter",
		} {
			if in.Config.Labels[k] != v {
				t.Errorf("%s: label %s=%q, want %q", image(a), k, in.Config.Labels[k], v)
			}
		}
		digests = append(digests, in.Digest)

		// The binary in the image is the one make crossbuild left in .build/.
		bin := filepath.Join(t.TempDir(), "wsgi_exporter")
		ctr := podman(t, "create", image(a)) // created, never started
		t.Cleanup(func() { podman(t, "rm", ctr) })
		podman(t, "cp", ctr+":/bin/wsgi_exporter", bin)
		got, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, rt.read(t, ".build/linux-"+a+"/wsgi_exporter")) {
			t.Errorf("%s: /bin/wsgi_exporter differs from .build/linux-%s/wsgi_exporter", image(a), a)
		}
		checkBinary(t, rt, bin, a)
		if a == runtime.GOARCH {
			checkVersionOutput(t, rt, bin, a)
			checkImageBinaryScrapesUWSGI(t, rt, bin)
		}
	}

	var ml struct {
		Manifests []struct {
			Digest   string
			Platform struct{ Architecture, OS string }
		}
	}
	if err := json.Unmarshal([]byte(podman(t, "manifest", "inspect", list)), &ml); err != nil {
		t.Fatal(err)
	}
	if len(ml.Manifests) != len(releaseArchs) {
		t.Fatalf("manifest list %s has %d entries, want %d", list, len(ml.Manifests), len(releaseArchs))
	}
	for i, m := range ml.Manifests {
		if m.Platform.OS != "linux" || m.Platform.Architecture != releaseArchs[i] || m.Digest != digests[i] {
			t.Errorf("manifest list entry %d: %s/%s %s, want linux/%s %s", i, m.Platform.OS, m.Platform.Architecture, m.Digest, releaseArchs[i], digests[i])
		}
	}
}

// checkImageBinaryScrapesUWSGI runs the image's binary against a real uWSGI with a stats
// socket: the containers this image makes cannot run here, its binary can.
func checkImageBinaryScrapesUWSGI(t *testing.T, rt *releaseTree, bin string) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/uwsgi/plugins/python3_plugin.so"); err != nil {
		t.Fatalf("the uWSGI python3 plugin is required (Debian package uwsgi-plugin-python3): %v", err)
	}
	sock := filepath.Join(t.TempDir(), "stats.sock")
	uri := "unix://" + sock
	in := uwsgiStart(t, "release", uri, uri, "--stats", sock)
	in.waitReady(t)
	x := StartExporterBin(t, bin, "--uwsgi.stats-uri="+uri)
	m := x.Scrape(t)
	if got := m.Get(t, "uwsgi_up", map[string]string{"stats_uri": uri}); got != 1 {
		t.Errorf("uwsgi_up = %v, want 1", got)
	}
	if got := m.Get(t, "uwsgi_workers", map[string]string{"stats_uri": uri}); got != uwsgiWorkers {
		t.Errorf("uwsgi_workers = %v, want %d", got, uwsgiWorkers)
	}
	build := map[string]string{"version": rt.version, "revision": rt.revision, "branch": rt.branch, "tags": "netgo", "goarch": runtime.GOARCH}
	if got := m.Get(t, "wsgi_exporter_build_info", build); got != 1 {
		t.Errorf("wsgi_exporter_build_info%v = %v, want 1", build, got)
	}
}

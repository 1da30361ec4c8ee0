package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildRedis parses args and builds the Redis sources.
func buildRedis(t *testing.T, args ...string) ([]string, error) {
	t.Helper()
	app, s := newApp()
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.kinds {
		if f, ok := k.(*redisFlags); ok {
			srcs, err := f.build(common{Timeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
			var names []string
			for _, src := range srcs {
				names = append(names, src.Config().SourceName())
			}
			return names, err
		}
	}
	t.Fatal("no redis flags")
	return nil, nil
}

// TestRedisFlags: URLs from flags and from the environment (one per line), their user
// information never in the source's name; bad settings refused at start-up without showing
// the password.
func TestRedisFlags(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	names, err := buildRedis(t, "--redis.url=redis://exporter@10.0.0.1:6380/3", "--redis.url=unix:///run/redis.sock?db=1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "redis://10.0.0.1:6380/3 unix:///run/redis.sock?db=1" {
		t.Errorf("sources %q", names)
	}
	t.Setenv("WSGI_EXPORTER_REDIS_URL", "redis://a:6379/0\nrediss://b:6379/1")
	names, err = buildRedis(t, "--redis.password-file="+pw)
	if err != nil || len(names) != 2 || names[1] != "rediss://b:6379/1" {
		t.Errorf("from the environment: %q %v", names, err)
	}
	t.Setenv("WSGI_EXPORTER_REDIS_URL", "")
	for _, args := range [][]string{
		{"--redis.url=http://h/0"},
		{"--redis.url=redis://user:hunter2@10.0.0.1:6380/3"},
		{"--redis.url=redis://h/0?token=hunter2"},
		{"--redis.url=redis://:hunter2@h:x/0"},
		{"--redis.url=redis://:hunter2@h/0", "--redis.password-file=" + pw},
		{"--redis.url=redis://h/0", "--redis.max-keys=0"},
		{"--redis.url=redis://h/0", "--redis.key-prefix=:"},
		{"--redis.url=redis://h/0", "--redis.resume-window=0s"},
		{"--redis.url=redis://h/0", "--redis.password-file=/nonexistent/pw"},
	} {
		_, err := buildRedis(t, args...)
		if err == nil {
			t.Errorf("%q: no error", args)
		} else if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error shows the password: %v", args, err)
		}
	}
}

package backend_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// history builds a versioned memory bucket: old.txt before versioning at
// t0; a.txt, b.txt, dir/x, gone/y and a directory marker at t1; at t2 a
// new a.txt, b.txt and gone/y deleted, later/z created; at t3 b.txt back.
func history(t *testing.T) (m *memory.Bucket, t0, t1, t2, t3 time.Time) {
	ctx := t.Context()
	t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	t1, t2, t3 = t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	now := t0
	m = memory.New("test")
	m.SetClock(func() time.Time { return now })
	write := func(key, data string) {
		t.Helper()
		if _, err := m.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader(data), Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(key string) {
		t.Helper()
		if err := m.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	write("old.txt", "old")
	if err := m.SetVersioning(ctx, "Enabled"); err != nil {
		t.Fatal(err)
	}
	now = t1
	write("a.txt", "a one")
	write("b.txt", "b one")
	write("dir/x", "x")
	write("gone/y", "y")
	write("marker/", "")
	now = t2
	write("a.txt", "a two!")
	remove("b.txt")
	remove("gone/y")
	write("later/z", "z")
	now = t3
	write("b.txt", "b three")
	return m, t0, t1, t2, t3
}

// listAll lists one directory level page by page.
func listAll(t *testing.T, b backend.Bucket, prefix string, maxKeys int) (names []string) {
	t.Helper()
	for token := ""; ; {
		page, err := b.List(t.Context(), backend.ListInput{Prefix: prefix, Delimiter: "/", Token: token, MaxKeys: maxKeys})
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if maxKeys > 0 && len(page.Objects)+len(page.Prefixes) > maxKeys {
			t.Errorf("List(%q) page has %d entries, want at most %d", prefix, len(page.Objects)+len(page.Prefixes), maxKeys)
		}
		for _, o := range page.Objects {
			names = append(names, o.Key)
		}
		names = append(names, page.Prefixes...)
		if token = page.NextToken; token == "" {
			break
		}
	}
	slices.Sort(names)
	return names
}

func read(t *testing.T, b backend.Bucket, key string) (string, error) {
	t.Helper()
	body, _, err := b.Get(t.Context(), backend.GetInput{Key: key, Length: -1})
	if err != nil {
		return "", err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	return string(data), err
}

func TestAsOf(t *testing.T) {
	m, t0, t1, t2, t3 := history(t)
	tests := []struct {
		name     string
		at       time.Time
		root     []string          // one level under ""
		contents map[string]string // key -> data; "" data means absent
		dirs     map[string]bool   // HasPrefix
	}{
		{"before everything", t0.Add(-time.Second), nil,
			map[string]string{"old.txt": "", "a.txt": ""}, map[string]bool{"": false, "dir/": false}},
		{"unversioned object only", t0, []string{"old.txt"},
			map[string]string{"old.txt": "old", "a.txt": ""}, map[string]bool{"dir/": false}},
		{"first versions", t1.Add(30 * time.Minute),
			[]string{"a.txt", "b.txt", "dir/", "gone/", "marker/", "old.txt"},
			map[string]string{"a.txt": "a one", "b.txt": "b one", "gone/y": "y", "later/z": ""},
			map[string]bool{"gone/": true, "later/": false, "marker/": true}},
		{"exactly at a change", t2,
			[]string{"a.txt", "dir/", "later/", "marker/", "old.txt"},
			map[string]string{"a.txt": "a two!", "b.txt": "", "gone/y": "", "later/z": "z"},
			map[string]bool{"gone/": false, "later/": true, "dir/": true}},
		{"now", t3.Add(time.Hour),
			[]string{"a.txt", "b.txt", "dir/", "later/", "marker/", "old.txt"},
			map[string]string{"b.txt": "b three"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			b := backend.AsOf(m, tt.at)
			if got := listAll(t, b, "", 0); !slices.Equal(got, tt.root) {
				t.Errorf("List = %q, want %q", got, tt.root)
			}
			if got := listAll(t, b, "", 1); !slices.Equal(got, tt.root) {
				t.Errorf("List one at a time = %q, want %q", got, tt.root)
			}
			for key, want := range tt.contents {
				got, err := read(t, b, key)
				head, herr := b.Head(ctx, key)
				if want == "" {
					if !errors.Is(err, backend.ErrNotFound) || !errors.Is(herr, backend.ErrNotFound) {
						t.Errorf("%s: Get = %q, %v; Head = %v; want ErrNotFound", key, got, err, herr)
					}
					continue
				}
				if err != nil || got != want {
					t.Errorf("%s: Get = %q, %v; want %q", key, got, err, want)
				}
				if herr != nil || !head.HasHeaders || head.Size != int64(len(want)) || head.LastModified.After(tt.at) {
					t.Errorf("%s: Head = %+v, %v; want the headers of %q from before %v", key, head, herr, want, tt.at)
				}
			}
			for prefix, want := range tt.dirs {
				if got, err := b.HasPrefix(ctx, prefix); err != nil || got != want {
					t.Errorf("HasPrefix(%q) = %v, %v; want %v", prefix, got, err, want)
				}
			}
		})
	}
}

func TestAsOfListsOnce(t *testing.T) {
	m, _, t1, _, _ := history(t)
	ctx := t.Context()
	b := backend.AsOf(m, t1)
	before := m.Requests("list")
	listAll(t, b, "", 1)
	listAll(t, b, "dir/", 0)
	b.HasPrefix(ctx, "gone/")
	b.Head(ctx, "a.txt")
	if n := m.Requests("list") - before; n != 1 {
		t.Errorf("the view made %d listings, want one", n)
	}
}

func TestAsOfUnversioned(t *testing.T) {
	ctx := t.Context()
	t1 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	now := t1
	m := memory.New("test")
	m.SetClock(func() time.Time { return now })
	m.Put(ctx, backend.PutInput{Key: "x", Body: strings.NewReader("x"), Size: 1})
	now = t1.Add(time.Hour)
	m.Put(ctx, backend.PutInput{Key: "y", Body: strings.NewReader("y"), Size: 1})
	b := backend.AsOf(m, t1.Add(time.Minute))
	if got := listAll(t, b, "", 0); !slices.Equal(got, []string{"x"}) {
		t.Errorf("List = %q, want [x]", got)
	}
	if got, err := read(t, b, "x"); err != nil || got != "x" {
		t.Errorf("Get(x) = %q, %v", got, err)
	}
}

func TestAsOfRefusesWrites(t *testing.T) {
	m, _, t1, _, _ := history(t)
	b := backend.AsOf(m, t1)
	ctx := t.Context()
	writes := map[string]func(ctx context.Context) error{
		"put": func(ctx context.Context) error {
			_, err := b.Put(ctx, backend.PutInput{Key: "new", Body: strings.NewReader(""), Size: 0})
			return err
		},
		"delete": func(ctx context.Context) error { return b.Delete(ctx, "a.txt") },
		"copy": func(ctx context.Context) error {
			_, err := b.Copy(ctx, backend.CopyInput{Src: "a.txt", Dst: "c.txt"})
			return err
		},
		"upload": func(ctx context.Context) error {
			_, err := b.StartUpload(ctx, backend.PutInput{Key: "big"})
			return err
		},
		"acl":        func(ctx context.Context) error { return b.PutACL(ctx, "a.txt", "private") },
		"versioning": func(ctx context.Context) error { return b.SetVersioning(ctx, "Suspended") },
		"policy":     func(ctx context.Context) error { return b.SetPolicy(ctx, "{}") },
	}
	for name, write := range writes {
		if err := write(ctx); !errors.Is(err, backend.ErrAccessDenied) {
			t.Errorf("%s = %v, want ErrAccessDenied", name, err)
		}
	}
	if n := m.Requests("put") + m.Requests("delete") + m.Requests("copy") + m.Requests("upload"); n != 11 {
		// history made 11 writes (9 puts, 2 deletes) itself.
		t.Errorf("the backend saw %d writes, want history's 11 only", n)
	}
}

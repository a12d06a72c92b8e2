package controllers_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// lines is a logger sink that keeps each line at info level (V(0)).
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.all = append(l.all, prefix+" "+args)
	}, funcr.Options{Verbosity: 0})
}

func (l *lines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.all
	l.all = nil
	return out
}

// TestLogsOneLinePerChange: a pass logs one info line per ledger change and
// nothing when nothing changed.
func TestLogsOneLinePerChange(t *testing.T) {
	r := newRig(t)
	const svc = "logged"
	ids := r.launch(4, svc)
	var l lines
	ctx := logr.NewContext(context.Background(), l.logger())
	syncer := r.syncer(r.store)
	service := controllers.Service{Policy: naming.Policy{Service: svc, Scheme: naming.Iterative, Reap: controllers.DefaultReap()}}

	steps := []struct {
		name      string
		change    func()
		wantLines int
		wantWord  string
	}{
		{"fresh fleet of 4", func() {}, 4, `"type"="Bind"`},
		{"nothing changed", func() {}, 0, ""},
		{"one terminated", func() {
			if err := r.fleet.Terminate(ids[0]); err != nil {
				t.Fatal(err)
			}
		}, 1, `"type"="Release"`},
		{"nothing changed again", func() {}, 0, ""},
	}
	for _, st := range steps {
		st.change()
		if _, err := syncer.Sync(ctx, service); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := l.take()
		if len(got) != st.wantLines {
			t.Errorf("%s: %d log lines, want %d:\n%s", st.name, len(got), st.wantLines, strings.Join(got, "\n"))
			continue
		}
		for _, line := range got {
			if !strings.Contains(line, st.wantWord) || !strings.Contains(line, `"hostname"="logged-`) {
				t.Errorf("%s: line %q, want %s with the hostname", st.name, line, st.wantWord)
			}
		}
	}
}

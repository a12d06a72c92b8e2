package memlimit

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestLimit(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string
		want    int64
		wantOK  bool
		wantErr string
	}{
		"256Mi limit":             {env: map[string]string{Env: "268435456"}, want: 241591910, wantOK: true},
		"spaces around":           {env: map[string]string{Env: " 1000\n"}, want: 900, wantOK: true},
		"no limit passed":         {env: map[string]string{}},
		"GOMEMLIMIT wins":         {env: map[string]string{Env: "268435456", "GOMEMLIMIT": "100MiB"}},
		"GOMEMLIMIT even if junk": {env: map[string]string{Env: "junk", "GOMEMLIMIT": "off"}},
		"a quantity, not bytes":   {env: map[string]string{Env: "256Mi"}, wantErr: `AEROSTAT_MEMORY_LIMIT="256Mi"`},
		"zero":                    {env: map[string]string{Env: "0"}, wantErr: `AEROSTAT_MEMORY_LIMIT="0"`},
		"negative":                {env: map[string]string{Env: "-5"}, wantErr: `AEROSTAT_MEMORY_LIMIT="-5"`},
		"overflow":                {env: map[string]string{Env: "99999999999999999999"}, wantErr: "positive integer"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok, err := Limit(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || ok != tc.wantOK || got != tc.want {
				t.Fatalf("Limit = %d, %v, %v; want %d, %v, nil", got, ok, err, tc.want, tc.wantOK)
			}
		})
	}
}

func TestApplySetsTheRuntimeLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	debug.SetMemoryLimit(math.MaxInt64)
	got, err := Apply(func(k string) string { return map[string]string{Env: "1000000000"}[k] })
	if err != nil || got != 900000000 || debug.SetMemoryLimit(-1) != 900000000 {
		t.Fatalf("Apply = %d, %v; runtime limit %d; want 900000000", got, err, debug.SetMemoryLimit(-1))
	}
	if _, err := Apply(func(k string) string { return map[string]string{Env: "lots"}[k] }); err == nil {
		t.Fatal("Apply took a bad value")
	}
	if debug.SetMemoryLimit(-1) != 900000000 {
		t.Fatal("a bad value changed the limit")
	}
}

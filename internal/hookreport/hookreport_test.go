package hookreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/plainjson/difftest"
)

// Reports written are collected oldest first, once; junk is removed and
// said; a full directory refuses more.
func TestWriteCollect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reports")
	t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 5000)
	for i, id := range []string{"second", "first"} {
		r := Report{Time: t0.Add(time.Duration(1-i) * time.Second), ContainerID: id, Runtime: "runc",
			Claims: []Claim{{"ocigate.io/failure-policy", "open"}}, Rule: long}
		if err := Write(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", fi, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, errs := Collect(dir)
	if len(got) != 2 || got[0].ContainerID != "first" || got[1].ContainerID != "second" || got[0].Claims[0].Value != "open" ||
		len(got[0].Rule) != maxValue+3 || len(errs) != 1 {
		t.Fatalf("Collect = %+v, %v", got, errs)
	}
	if again, errs := Collect(dir); len(again) != 0 || len(errs) != 0 {
		t.Fatalf("second Collect = %+v, %v", again, errs)
	}
	for i := 0; i < MaxFiles; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf(".tmp-%d", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(dir, Report{Time: t0}); !errors.Is(err, ErrFull) {
		t.Fatalf("full: %v", err)
	}
	if got, errs := Collect(filepath.Join(dir, "missing")); got != nil || errs != nil {
		t.Fatalf("missing dir: %v %v", got, errs)
	}
}

// The hand encoder writes what encoding/json writes, which Collect reads.
func FuzzAppendJSONMatchesEncodingJSON(f *testing.F) {
	f.Add(int64(1796530000123456789), "c1", "runc", "/run/b", "ocigate.io/failure-policy", "open", "rule", true)
	f.Add(int64(0), "<&>\u2028\"\\", "", "", "\x00\xff", "é", "", false)
	f.Fuzz(func(t *testing.T, ns int64, id, runtime, bundle, key, value, rule string, claims bool) {
		r := Report{Time: time.Unix(0, ns).UTC(), ContainerID: id, Runtime: runtime, Bundle: bundle, Rule: rule}
		if claims {
			r.Claims = []Claim{{key, value}, {value, key}}
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Skip(err) // a time encoding/json refuses
		}
		if got := r.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON:\n got %s\nwant %s", got, want)
		}
	})
}

func TestFileNameSortsAsTime(t *testing.T) {
	a, b := time.Unix(0, 999), time.Unix(0, 1000)
	if x, y := fileName(a, 7), fileName(b, 7); x >= y || x != "00000000000000000999-7.json" {
		t.Errorf("fileName: %q, %q", x, y)
	}
}

// decode reads what encoding/json reads into a Report, and refuses what
// it refuses.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	r := Report{Time: time.Date(2026, 12, 6, 4, 0, 0, 5, time.UTC), ContainerID: "c1", Runtime: "runc",
		Claims: []Claim{{"ocigate.io/failure-policy", "open"}}, Rule: "rule"}
	f.Add(string(r.appendJSON(nil)))
	for _, s := range []string{`{"time":null,"claims":null}`, `{"time":"2026-12-06T04:00:00+01:00"}`, `{"time":"\u0032026-12-06T04:00:00Z"}`,
		`{"claims":[{"key":"a"},null],"claims":[{"value":"b"}]}`, `{"claims":[{"key":"a","value":"x"},{"key":"b"}],"claims":[null,{"value":"c"},{}]}`,
		`{"claims":[]}`, `{"CLAIMS":[{"KEY":"k"}],"Time":"2026-12-06T04:00:00Z","time":"bad"}`, `{"time":1}`, `{"claims":{}}`, `[]`, `{"rule":"x"} x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var want Report
		werr := json.Unmarshal([]byte(doc), &want)
		got, gerr := decode([]byte(doc))
		difftest.Agree(t, "report", []byte(doc), got, gerr, want, werr)
	})
}

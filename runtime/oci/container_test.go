package oci

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func stateFor(bundle string, annotations string) string {
	return `{"ociVersion":"1.0.2-dev","id":"c1","status":"creating","pid":1234,"bundle":"` + bundle + `"` +
		annotations + `}`
}

func TestLoadContainer(t *testing.T) {
	const cfg = `{"ociVersion":"1.0.2-dev","process":{"args":["/bin/sh","-c","true"]},"hostname":"web-1",` +
		`"annotations":{"shared":"spec","spec-only":"s","ocigate.io/failure-policy":"closed"},` +
		`"linux":{"cgroupsPath":"/kubepods/pod1/c1"}}`
	bundle := writeBundle(t, cfg)

	c, err := LoadContainer(strings.NewReader(stateFor(bundle,
		`,"annotations":{"shared":"state","state-only":"t","ocigate.io/failure-policy":"open"}`)))
	if err != nil {
		t.Fatalf("LoadContainer: %v", err)
	}
	want := &Container{
		ID:     "c1",
		Bundle: bundle,
		Pid:    1234,
		Status: "creating",
		Annotations: map[string]string{
			"shared":                    "state", // state wins
			"spec-only":                 "s",
			"state-only":                "t",
			"ocigate.io/failure-policy": "open", // state wins
		},
		CgroupsPath: "/kubepods/pod1/c1",
		Hostname:    "web-1",
		Args:        []string{"/bin/sh", "-c", "true"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("LoadContainer =\n%+v\nwant\n%+v", c, want)
	}
	if open, err := c.FailOpen(); err != nil || !open {
		t.Fatalf("FailOpen = %v, %v; want true, nil", open, err)
	}
}

func TestLoadContainerMinimalSpec(t *testing.T) {
	// No process, no linux section, no annotations anywhere.
	bundle := writeBundle(t, `{"ociVersion":"1.2.0"}`)
	c, err := LoadContainer(strings.NewReader(stateFor(bundle, "")))
	if err != nil {
		t.Fatalf("LoadContainer: %v", err)
	}
	if c.CgroupsPath != "" || c.Hostname != "" || c.Args != nil {
		t.Fatalf("LoadContainer = %+v, want empty spec fields", c)
	}
	if c.Annotations == nil || len(c.Annotations) != 0 {
		t.Fatalf("Annotations = %#v, want empty non-nil map", c.Annotations)
	}
}

func TestLoadContainerErrors(t *testing.T) {
	t.Run("invalid state", func(t *testing.T) {
		c, err := LoadContainer(strings.NewReader(`{"ociVersion":"1.0.2","id":"c1","bundle":"rel"}`))
		if err == nil || c != nil {
			t.Fatalf("LoadContainer = %+v, %v; want nil and an error", c, err)
		}
		if !strings.Contains(err.Error(), `"bundle" is not an absolute path`) {
			t.Fatalf("error = %q", err)
		}
	})
	t.Run("missing config.json", func(t *testing.T) {
		bundle := t.TempDir()
		c, err := LoadContainer(strings.NewReader(stateFor(bundle,
			`,"annotations":{"ocigate.io/failure-policy":"open"}`)))
		if err == nil {
			t.Fatal("LoadContainer succeeded without config.json")
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error = %v, want errors.Is fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), "bundle "+bundle+":") {
			t.Fatalf("error = %q, want it to name the bundle", err)
		}
		// The state-only container is still returned so the caller can
		// consult the failure policy.
		if c == nil || c.ID != "c1" || c.Pid != 1234 || c.Annotations[AnnotationFailurePolicy] != "open" {
			t.Fatalf("LoadContainer container = %+v, want state-only container", c)
		}
	})
	t.Run("invalid config json", func(t *testing.T) {
		bundle := writeBundle(t, `{"ociVersion":"1.0.2",`)
		c, err := LoadContainer(strings.NewReader(stateFor(bundle, "")))
		if err == nil || c == nil {
			t.Fatalf("LoadContainer = %+v, %v; want state-only container and an error", c, err)
		}
		if !strings.Contains(err.Error(), "decoding bundle config") {
			t.Fatalf("error = %q", err)
		}
	})
}

func TestFailOpen(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		wantOpen    bool
		wantErr     string
	}{
		{name: "open", annotations: map[string]string{AnnotationFailurePolicy: "open"}, wantOpen: true},
		{name: "closed", annotations: map[string]string{AnnotationFailurePolicy: "closed"}},
		{name: "absent", annotations: map[string]string{AnnotationProfile: "web"}},
		{name: "nil annotations"},
		{name: "empty value", annotations: map[string]string{AnnotationFailurePolicy: ""},
			wantErr: `annotation "ocigate.io/failure-policy" has invalid value ""`},
		{name: "wrong case", annotations: map[string]string{AnnotationFailurePolicy: "Open"},
			wantErr: `annotation "ocigate.io/failure-policy" has invalid value "Open"`},
		{name: "garbage", annotations: map[string]string{AnnotationFailurePolicy: "yes please"},
			wantErr: `invalid value "yes please" (want "open" or "closed")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Container{ID: "c1", Annotations: tt.annotations}
			open, err := c.FailOpen()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FailOpen error = %v, want it to contain %q", err, tt.wantErr)
				}
				if open {
					t.Fatal("FailOpen returned open=true with an error")
				}
				return
			}
			if err != nil || open != tt.wantOpen {
				t.Fatalf("FailOpen = %v, %v; want %v, nil", open, err, tt.wantOpen)
			}
		})
	}
	var nilC *Container
	if open, err := nilC.FailOpen(); err == nil || open {
		t.Fatalf("nil FailOpen = %v, %v; want false and an error", open, err)
	}
}

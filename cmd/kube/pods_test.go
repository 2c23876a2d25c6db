package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWorkloadOf: each controller a pod can have names its workload as
// Tetragon's pod object does.
func TestWorkloadOf(t *testing.T) {
	yes, no := true, false
	owner := func(kind, name string, controller *bool) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: controller}}
	}
	for _, tt := range []struct {
		name         string
		owners       []metav1.OwnerReference
		labels       map[string]string
		want, wantTo string
	}{
		{"bare pod", nil, nil, "p", "Pod"},
		{"not the controller", owner("ReplicaSet", "web-5d8f7c", &no), nil, "p", "Pod"},
		{"deployment", owner("ReplicaSet", "web-5d8f7c", &yes), map[string]string{"pod-template-hash": "5d8f7c"}, "web", "Deployment"},
		{"bare replicaset", owner("ReplicaSet", "web", &yes), nil, "web", "ReplicaSet"},
		{"statefulset", owner("StatefulSet", "db", &yes), nil, "db", "StatefulSet"},
		{"daemonset", owner("DaemonSet", "agent", &yes), nil, "agent", "DaemonSet"},
		{"job", owner("Job", "migrate", &yes), nil, "migrate", "Job"},
		{"cronjob", owner("Job", "backup-29421360", &yes), nil, "backup", "CronJob"},
		{"job with a short number", owner("Job", "backup-2026", &yes), nil, "backup-2026", "Job"},
		{"replicationcontroller", owner("ReplicationController", "old", &yes), nil, "old", "ReplicationController"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", OwnerReferences: tt.owners, Labels: tt.labels}}
			if name, kind := workloadOf(p); name != tt.want || kind != tt.wantTo {
				t.Errorf("workloadOf = %s %s, want %s %s", name, kind, tt.want, tt.wantTo)
			}
		})
	}
}

// TestWriteExempt: the exempt namespaces go to the file the node's
// gate reads, sorted, one a line; no path, no file.
func TestWriteExempt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exempt-namespaces")
	if err := writeExempt(path, exemptSet("ocigate, kube-system")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(string(b), "\nkube-system\nocigate\n") {
		t.Fatalf("file (%v): %q", err, b)
	}
	if err := writeExempt("", exemptSet("x")); err != nil {
		t.Fatal(err)
	}
}

// TestSlimPodKeepsContainerNames: the informer's slim pod keeps what a
// containerSelector chooses among.
func TestSlimPodKeepsContainerNames(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"big": "x"}},
		Spec: corev1.PodSpec{NodeName: "n", InitContainers: []corev1.Container{{Name: "init", Image: "i"}},
			Containers:          []corev1.Container{{Name: "app", Image: "a"}, {Name: "proxy", Image: "p"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}}}
	obj, err := slimPod(p)
	if err != nil {
		t.Fatal(err)
	}
	slim := obj.(*corev1.Pod)
	if got := strings.Join(containerNames(slim), ","); got != "init,app,proxy,debug" || slim.Annotations != nil || slim.Spec.Containers[0].Image != "" {
		t.Errorf("slim pod %+v: containers %q", slim, got)
	}
}

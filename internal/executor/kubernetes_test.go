package executor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

type kubeRun struct {
	res  Result
	err  error
	logs []string
	done chan struct{}
}

func startKube(t *testing.T, ctx context.Context, k *KubernetesExecutor, spec Spec) *kubeRun {
	t.Helper()
	r := &kubeRun{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.res, r.err = k.Run(ctx, spec, func(l string) { r.logs = append(r.logs, l) })
	}()
	return r
}

func (r *kubeRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func newKube(t *testing.T) (*KubernetesExecutor, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	k, err := NewKubernetes(Config{Kind: Kubernetes, Namespace: "mosaic-jobs", AllowImages: []string{testDigest},
		Limits: Limits{MemoryBytes: 2 << 30, DiskBytes: 1 << 30, WallClock: time.Hour}}, cs)
	if err != nil {
		t.Fatal(err)
	}
	k.Poll = 20 * time.Millisecond
	return k, cs
}

// createdJob waits for the run's Job to appear.
func createdJob(t *testing.T, cs *fake.Clientset, r *kubeRun) *batchv1.Job {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			t.Fatalf("Run returned before its Job was seen: %+v, %v", r.res, r.err)
		default:
		}
		jobs, err := cs.BatchV1().Jobs("mosaic-jobs").List(context.Background(), metav1.ListOptions{})
		if err == nil && len(jobs.Items) == 1 {
			return &jobs.Items[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no Job was created")
	return nil
}

// simulate plays the cluster: a pod for the Job in the given container
// state, then the Job's condition.
func simulate(t *testing.T, cs *fake.Clientset, job *batchv1.Job, term *corev1.ContainerStateTerminated, cond batchv1.JobConditionType, reason string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-abcde", Namespace: job.Namespace, Labels: job.Spec.Template.Labels},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "job", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	if _, err := cs.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if term == nil {
		return
	}
	pod.Status.Phase = corev1.PodSucceeded
	if term.ExitCode != 0 {
		pod.Status.Phase = corev1.PodFailed
	}
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: term}
	if _, err := cs.CoreV1().Pods(job.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{Type: cond, Status: corev1.ConditionTrue, Reason: reason})
	if _, err := cs.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestKubernetesJobAndSuccess(t *testing.T) {
	k, cs := newKube(t)
	spec := Spec{Job: "Job_42", Image: "registry.example/train@" + testDigest, Command: []string{"--epochs", "3"},
		Env: map[string]string{"SEED": "7"}, Flavor: "small-gpu",
		Inputs: []Mount{{Host: "pvc:mosaic-data/snapshots/s1", Target: "/data"}}, Output: "pvc:mosaic-out/job-42",
		Limits: Limits{MemoryBytes: 1 << 30, WallClock: 10 * time.Minute}}
	r := startKube(t, context.Background(), k, spec)
	job := createdJob(t, cs, r)

	js := job.Spec
	if *js.BackoffLimit != 0 || *js.ActiveDeadlineSeconds != 600 || js.TTLSecondsAfterFinished == nil {
		t.Fatalf("job spec: backoff %d deadline %d ttl %v", *js.BackoffLimit, *js.ActiveDeadlineSeconds, js.TTLSecondsAfterFinished)
	}
	ps := js.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyNever || *ps.AutomountServiceAccountToken || !*ps.SecurityContext.RunAsNonRoot ||
		ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("pod spec: %+v", ps)
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	if c.Image != spec.Image || strings.Join(c.Args, " ") != "--epochs 3" || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem ||
		*sc.AllowPrivilegeEscalation || *sc.Privileged || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("container: %+v", c)
	}
	gpu := c.Resources.Limits[GPUResource]
	mem := c.Resources.Limits[corev1.ResourceMemory]
	cpu := c.Resources.Requests[corev1.ResourceCPU]
	if gpu.Value() != 1 || mem.Value() != 1<<30 || cpu.MilliValue() != 2000 {
		t.Fatalf("resources: %+v", c.Resources)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["SEED"] != "7" || env["MOSAIC_JOB"] != "Job_42" {
		t.Fatalf("env: %v", env)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if !mounts["/data"].ReadOnly || mounts["/data"].SubPath != "snapshots/s1" || mounts["/out"].ReadOnly || mounts["/out"].SubPath != "job-42" {
		t.Fatalf("mounts: %+v", c.VolumeMounts)
	}
	np, err := cs.NetworkingV1().NetworkPolicies("mosaic-jobs").Get(context.Background(), job.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(np.Spec.Egress) != 0 || len(np.Spec.Ingress) != 0 || len(np.Spec.PolicyTypes) != 2 ||
		np.Spec.PodSelector.MatchLabels[LabelRun] != job.Spec.Template.Labels[LabelRun] {
		t.Fatalf("network policy: %+v", np.Spec)
	}
	hasEgress := false
	for _, pt := range np.Spec.PolicyTypes {
		hasEgress = hasEgress || pt == networkingv1.PolicyTypeEgress
	}
	if !hasEgress {
		t.Fatal("the network policy does not deny egress")
	}

	simulate(t, cs, job, &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}, batchv1.JobComplete, "")
	r.wait(t)
	if r.err != nil || r.res.ExitCode != 0 || r.res.Killed != "" {
		t.Fatalf("result %+v, %v", r.res, r.err)
	}
	if len(r.logs) == 0 || r.logs[0] != "fake logs" {
		t.Fatalf("logs %q", r.logs)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("mosaic-jobs").Get(context.Background(), job.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the network policy outlived the run: %v", err)
	}
}

func TestKubernetesFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		term   *corev1.ContainerStateTerminated
		cond   batchv1.JobConditionType
		reason string
		code   int
		killed string
	}{
		{"exit", &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}, batchv1.JobFailed, "BackoffLimitExceeded", 3, ""},
		{"oom", &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}, batchv1.JobFailed, "BackoffLimitExceeded", 137, KilledMemory},
		{"deadline", &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}, batchv1.JobFailed, "DeadlineExceeded", 137, KilledTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, cs := newKube(t)
			r := startKube(t, context.Background(), k, Spec{Job: "j", Image: "x@" + testDigest, Output: "/srv/out"})
			job := createdJob(t, cs, r)
			simulate(t, cs, job, c.term, c.cond, c.reason)
			r.wait(t)
			if r.err != nil || r.res.ExitCode != c.code || r.res.Killed != c.killed {
				t.Fatalf("result %+v, %v", r.res, r.err)
			}
		})
	}
}

func TestKubernetesCancelDeletes(t *testing.T) {
	k, cs := newKube(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := startKube(t, ctx, k, Spec{Job: "j", Image: "x@" + testDigest, Output: "/srv/out"})
	job := createdJob(t, cs, r)
	simulate(t, cs, job, nil, "", "")
	cancel()
	r.wait(t)
	if r.err != nil || r.res.Killed != KilledCancelled {
		t.Fatalf("result %+v, %v", r.res, r.err)
	}
	if _, err := cs.BatchV1().Jobs("mosaic-jobs").Get(context.Background(), job.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Job is still there: %v", err)
	}
	// The fake clientset has no garbage collector: the delete must ask
	// the cluster's to remove the pods too.
	deleted := false
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok && a.GetResource().Resource == "jobs" && d.GetName() == job.Name {
			pp := d.DeleteOptions.PropagationPolicy
			if pp == nil || *pp == metav1.DeletePropagationOrphan {
				t.Fatalf("the Job was deleted leaving its pods: %v", pp)
			}
			deleted = true
		}
	}
	if !deleted {
		t.Fatal("no delete of the Job was sent")
	}
}

func TestKubernetesRefuses(t *testing.T) {
	k, cs := newKube(t)
	for _, c := range []struct {
		spec Spec
		want error
	}{
		{Spec{Image: "x@sha256:" + strings.Repeat("2", 64), Output: "/srv/out"}, ErrNotAllowed},
		{Spec{Image: "x:latest", Output: "/srv/out"}, ErrInvalid},
		{Spec{Image: "x@" + testDigest, Output: "relative/out"}, ErrInvalid},
		{Spec{Image: "x@" + testDigest, Output: "/srv/out", Flavor: "huge-gpu"}, ErrInvalid},
		{Spec{Image: "x@" + testDigest}, ErrInvalid},
	} {
		if _, err := k.Run(context.Background(), c.spec, nil); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.spec, err, c.want)
		}
	}
	jobs, _ := cs.BatchV1().Jobs("mosaic-jobs").List(context.Background(), metav1.ListOptions{})
	if len(jobs.Items) != 0 {
		t.Fatalf("a refused spec created %d Jobs", len(jobs.Items))
	}
	if _, err := NewKubernetes(Config{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil client: %v", err)
	}
	if _, err := New(Config{Kind: Kubernetes, Kubeconfig: "/nonexistent/kubeconfig"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("missing kubeconfig: %v", err)
	}
}

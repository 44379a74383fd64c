package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels the Kubernetes executor puts on what it creates.
const (
	// LabelRun names one run (its Job, pod and NetworkPolicy).
	LabelRun = "mosaic.imaging/run"
	// LabelJob is the hub's job id, made safe for a label.
	LabelJob = "mosaic.imaging/job"
	// GPUResource is the extended resource GPU flavors ask for.
	GPUResource = "nvidia.com/gpu"
)

// KubernetesExecutor runs an image by digest as a batch/v1 Job: one pod,
// no retries (backoffLimit 0), activeDeadlineSeconds from the wall clock
// limit, removed a while after it ends (ttlSecondsAfterFinished); a
// non-root, read-only, capability-less container with no privilege
// escalation and the runtime's default seccomp profile; resources from
// the flavor and limits; a NetworkPolicy of its own that denies all
// ingress and egress of the pod. Inputs and the output are host paths
// of the cluster's nodes (hostPath volumes) or persistent volume claims
// written pvc:CLAIM[/SUBPATH].
type KubernetesExecutor struct {
	client    kubernetes.Interface
	namespace string
	limits    Limits
	allow     map[string]bool
	maxLog    int
	// Poll is how often the run's state is read besides the watch
	// (default 2 s).
	Poll time.Duration
	// TTL is how long a finished Job is kept (default 10 minutes).
	TTL time.Duration
}

// NewKubernetes returns the Kubernetes executor over client (a real
// clientset or client-go's fake one in tests). The namespace is
// cfg.Namespace, else the service account's, else "default".
func NewKubernetes(cfg Config, client kubernetes.Interface) (*KubernetesExecutor, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: no Kubernetes client", ErrInvalid)
	}
	ns := cfg.Namespace
	if ns == "" {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		ns = "default"
	}
	return &KubernetesExecutor{client: client, namespace: ns, limits: cfg.Limits,
		allow: imageAllowSet(cfg.AllowImages), maxLog: cfg.MaxLogBytes,
		Poll: 2 * time.Second, TTL: 10 * time.Minute}, nil
}

// newKubernetesFromConfig builds the client from cfg.Kubeconfig, or from
// the cluster the node runs in.
func newKubernetesFromConfig(cfg Config) (Executor, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: Kubernetes configuration: %v", ErrUnavailable, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: Kubernetes client: %v", ErrUnavailable, err)
	}
	return NewKubernetes(cfg, cs)
}

// Kind is Kubernetes.
func (k *KubernetesExecutor) Kind() Kind { return Kubernetes }

// volume turns a mount's host side into a volume source.
func volume(host string, ro bool) (corev1.VolumeSource, string, error) {
	if rest, ok := strings.CutPrefix(host, "pvc:"); ok {
		claim, sub, _ := strings.Cut(rest, "/")
		if claim == "" || strings.Contains(sub, "..") {
			return corev1.VolumeSource{}, "", fmt.Errorf("%w: volume %q", ErrInvalid, host)
		}
		return corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: ro}}, sub, nil
	}
	if !path.IsAbs(host) || path.Clean(host) != host {
		return corev1.VolumeSource{}, "", fmt.Errorf("%w: volume %q must be an absolute path or pvc:CLAIM[/SUBPATH]", ErrInvalid, host)
	}
	t := corev1.HostPathDirectoryOrCreate
	if ro {
		t = corev1.HostPathUnset
	}
	return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: &t}}, "", nil
}

func labelValue(s string) string {
	s = sanitizeName(s)
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "-_.")
}

// JobObject returns the Job and NetworkPolicy one run creates, named name
// (exported so operators and tests can see exactly what is asked).
func (k *KubernetesExecutor) JobObject(spec Spec, lim Limits, name string) (*batchv1.Job, *networkingv1.NetworkPolicy, error) {
	f, err := LookupFlavor(spec.Flavor)
	if err != nil {
		return nil, nil, err
	}
	labels := map[string]string{LabelRun: name, LabelJob: labelValue(spec.Job), "app.kubernetes.io/managed-by": "mosaic"}
	yes, no := true, false
	nobody := int64(containerUID)
	tmp := resource.NewQuantity(min(lim.DiskBytes, 256<<20), resource.BinarySI)
	cpu := resource.NewMilliQuantity(int64(f.CPUs*1000), resource.DecimalSI)
	mem := resource.NewQuantity(lim.MemoryBytes, resource.BinarySI)
	disk := resource.NewQuantity(lim.DiskBytes+tmp.Value(), resource.BinarySI)
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: *cpu, corev1.ResourceMemory: *mem, corev1.ResourceEphemeralStorage: *disk},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: *cpu, corev1.ResourceMemory: *mem, corev1.ResourceEphemeralStorage: *disk},
	}
	if f.GPUs > 0 {
		g := resource.NewQuantity(int64(f.GPUs), resource.DecimalSI)
		res.Requests[GPUResource] = *g
		res.Limits[GPUResource] = *g
	}
	env := []corev1.EnvVar{{Name: "MOSAIC_OUTPUT", Value: "/out"}, {Name: "MOSAIC_JOB", Value: spec.Job}}
	keys := make([]string, 0, len(spec.Env))
	for key := range spec.Env {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		env = append(env, corev1.EnvVar{Name: key, Value: spec.Env[key]})
	}
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, m := range spec.Inputs {
		src, sub, err := volume(m.Host, true)
		if err != nil {
			return nil, nil, err
		}
		n := fmt.Sprintf("input-%d", i)
		vols = append(vols, corev1.Volume{Name: n, VolumeSource: src})
		mounts = append(mounts, corev1.VolumeMount{Name: n, MountPath: m.Target, SubPath: sub, ReadOnly: true})
	}
	src, sub, err := volume(spec.Output, false)
	if err != nil {
		return nil, nil, err
	}
	vols = append(vols, corev1.Volume{Name: "output", VolumeSource: src},
		corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: tmp}}})
	mounts = append(mounts, corev1.VolumeMount{Name: "output", MountPath: "/out", SubPath: sub},
		corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})
	deadline := int64(lim.WallClock / time.Second)
	if deadline < 1 {
		deadline = 1
	}
	ttl := int32(k.TTL / time.Second)
	backoff := int32(0)
	seccomp := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            &backoff,
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: &no,
					EnableServiceLinks:           &no,
					ActiveDeadlineSeconds:        &deadline,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: &yes, RunAsUser: &nobody, RunAsGroup: &nobody, FSGroup: &nobody,
						SeccompProfile: seccomp,
					},
					Containers: []corev1.Container{{
						Name:       "job",
						Image:      spec.Image,
						Args:       spec.Command,
						Env:        env,
						WorkingDir: "/out",
						Resources:  res,
						// The image is on the node by digest or pulled by
						// it; a digest cannot change under it.
						ImagePullPolicy: corev1.PullIfNotPresent,
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             &yes,
							RunAsUser:                &nobody,
							ReadOnlyRootFilesystem:   &yes,
							AllowPrivilegeEscalation: &no,
							Privileged:               &no,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           seccomp,
						},
						VolumeMounts: mounts,
					}},
					Volumes: vols,
				},
			},
		},
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.namespace, Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelRun: name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			// No rules: nothing in, nothing out.
		},
	}
	return job, np, nil
}

// Run creates the run's NetworkPolicy and Job, follows the pod's log,
// and returns when the Job has ended (or, on cancel or at the wall
// clock, when it has been deleted with its pods).
func (k *KubernetesExecutor) Run(ctx context.Context, spec Spec, log func(line string)) (Result, error) {
	if err := validateSpec(spec, false, false, false); err != nil {
		return Result{}, err
	}
	if spec.Output == "" {
		return Result{}, fmt.Errorf("%w: no output volume", ErrInvalid)
	}
	if _, err := allowedImage(spec.Image, k.allow); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{Killed: KilledCancelled, ExitCode: -1}, nil
	}
	lim := effective(k.limits, spec.Limits)
	name := strings.TrimSuffix("mosaic-"+labelValue(strings.ToLower(spec.Job)), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-._") + "-" + randomHex(5)
	job, np, err := k.JobObject(spec, lim, name)
	if err != nil {
		return Result{}, err
	}
	// Calls to the cluster outlive a cancelled ctx: cleaning up must
	// still happen.
	bg := context.WithoutCancel(ctx)
	if _, err := k.client.NetworkingV1().NetworkPolicies(k.namespace).Create(bg, np, metav1.CreateOptions{}); err != nil {
		return Result{}, fmt.Errorf("%w: creating the run's NetworkPolicy: %v", ErrUnavailable, err)
	}
	defer func() {
		_ = k.client.NetworkingV1().NetworkPolicies(k.namespace).Delete(bg, name, metav1.DeleteOptions{})
	}()
	start := time.Now()
	if _, err := k.client.BatchV1().Jobs(k.namespace).Create(bg, job, metav1.CreateOptions{}); err != nil {
		return Result{}, fmt.Errorf("%w: creating the Job: %v", ErrUnavailable, err)
	}

	s := newSink(log, k.maxLog)
	w := &watch{lim: lim, out: spec.Output}
	s.seen = w.line
	var logs sync.WaitGroup
	logCtx, stopLogs := context.WithCancel(bg)
	defer stopLogs()
	following := false

	events := make(chan struct{}, 1)
	watchCtx, stopWatch := context.WithCancel(bg)
	defer stopWatch()
	go k.watchJob(watchCtx, name, events)

	poll := k.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	// The cluster enforces activeDeadlineSeconds; the node stops waiting
	// a little later.
	wall := time.NewTimer(lim.WallClock + 30*time.Second)
	defer wall.Stop()
	ctxDone := ctx.Done()
	localDisk := path.IsAbs(spec.Output)
	res := Result{ExitCode: -1}
	killed := ""
	for {
		st := k.state(bg, name)
		if st.pod != "" && !following && st.started {
			following = true
			logs.Add(1)
			go func() {
				defer logs.Done()
				k.followLogs(logCtx, st.pod, s)
			}()
		}
		if st.done {
			res.ExitCode = st.exitCode
			killed = st.killed
			break
		}
		if st.gone {
			res.ExitCode = -1
			killed = KilledCancelled
			break
		}
		if localDisk {
			if used, n := diskUse(spec.Output, lim.DiskBytes); used >= lim.DiskBytes || n > maxOutputEntries {
				killed = KilledDisk
				k.delete(bg, name)
				break
			}
		}
		stop := ""
		select {
		case <-events:
		case <-ticker.C:
		case <-ctxDone:
			stop = KilledCancelled
		case <-wall.C:
			stop = KilledTimeout
		}
		if stop != "" {
			killed = stop
			k.delete(bg, name)
			break
		}
	}
	// Give the log stream a moment to deliver the pod's last lines.
	logsDone := make(chan struct{})
	go func() { logs.Wait(); close(logsDone) }()
	select {
	case <-logsDone:
	case <-time.After(5 * time.Second):
		stopLogs()
		<-logsDone
	}
	res.Duration = time.Since(start)
	if killed == "" && res.ExitCode != 0 && localDisk {
		res.Killed = w.classify("", res.ExitCode)
	} else {
		res.Killed = killed
	}
	return res, nil
}

// watchJob signals events whenever the run's Job changes; the poll
// covers a watch that ends or cannot start.
func (k *KubernetesExecutor) watchJob(ctx context.Context, name string, events chan<- struct{}) {
	for ctx.Err() == nil {
		wi, err := k.client.BatchV1().Jobs(k.namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for ev := range wi.ResultChan() {
			if j, ok := ev.Object.(*batchv1.Job); ok && j.Name != name {
				continue
			}
			select {
			case events <- struct{}{}:
			default:
			}
		}
		wi.Stop()
	}
}

// runState is what the cluster says of a run.
type runState struct {
	gone     bool // the Job no longer exists
	done     bool
	pod      string
	started  bool // the pod's container started (its log can be read)
	exitCode int
	killed   string
}

func (k *KubernetesExecutor) state(ctx context.Context, name string) runState {
	var st runState
	j, err := k.client.BatchV1().Jobs(k.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		st.gone = true
		return st
	}
	if err != nil {
		return st
	}
	pods, err := k.client.CoreV1().Pods(k.namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelRun + "=" + name})
	var term *corev1.ContainerStateTerminated
	if err == nil && len(pods.Items) > 0 {
		p := pods.Items[0]
		st.pod = p.Name
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name != "job" {
				continue
			}
			if cs.State.Running != nil || cs.State.Terminated != nil {
				st.started = true
			}
			term = cs.State.Terminated
		}
		if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			st.started = true
		}
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			st.done, st.exitCode = true, 0
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			st.done, st.exitCode = true, 1
			if c.Reason == batchv1.JobReasonDeadlineExceeded || c.Reason == "DeadlineExceeded" {
				st.killed = KilledTimeout
			}
		}
	}
	if st.done && term != nil {
		st.exitCode = int(term.ExitCode)
		if term.Reason == "OOMKilled" {
			st.killed = KilledMemory
		}
	}
	if st.done && st.exitCode != 0 && st.killed == "" && term != nil && term.ExitCode == 128+24 {
		st.killed = KilledCPU
	}
	return st
}

// followLogs streams the pod's log into the sink until it ends.
func (k *KubernetesExecutor) followLogs(ctx context.Context, pod string, s *sink) {
	limit := int64(s.max) + MaxLineBytes
	req := k.client.CoreV1().Pods(k.namespace).GetLogs(pod, &corev1.PodLogOptions{Container: "job", Follow: true, LimitBytes: &limit})
	rc, err := req.Stream(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.line("[the pod's log could not be read]")
		}
		return
	}
	defer rc.Close()
	go func() {
		<-ctx.Done()
		rc.Close()
	}()
	s.pump(rc)
}

// delete removes the run's Job; the cluster's garbage collector removes
// its pods first (foreground propagation), so the node needs no right to
// delete pods.
func (k *KubernetesExecutor) delete(ctx context.Context, name string) {
	fg := metav1.DeletePropagationForeground
	var zero int64
	_ = k.client.BatchV1().Jobs(k.namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg, GracePeriodSeconds: &zero})
}

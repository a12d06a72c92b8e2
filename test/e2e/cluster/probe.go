package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// probePod runs one pod of the sandbox image on the bridge network and
// waits until it runs: a node can be Ready on a machine where runc cannot
// start a container (no user namespaces, a refused oom_score_adj, no
// overlayfs), and this says so with the kubelet's own reason instead of a
// Helm timeout later.
func (c *Cluster) probePod(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	pods := cs.CoreV1().Pods(metav1.NamespaceDefault)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-probe"},
		Spec: corev1.PodSpec{
			NodeName:                      NodeName,
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  new(bool),
			TerminationGracePeriodSeconds: new(int64),
			Containers:                    []corev1.Container{{Name: "probe", Image: c.opts.SandboxImage, ImagePullPolicy: corev1.PullNever}},
		},
	}
	// The service-account admission plugin needs the namespace's
	// ServiceAccount, which the controller-manager makes a moment after
	// the namespace exists.
	var last string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			last = err.Error()
		}
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("creating the probe pod: %s: %w", last, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = podState(p)
		return p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		return fmt.Errorf("this machine cannot start containers: a pod of %s did not run (%s; events: %s): %w",
			c.opts.SandboxImage, last, c.podEvents(ctx, cs, pod.Name), err)
	}
	return pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
}

func podState(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, st := range p.Status.ContainerStatuses {
		if w := st.State.Waiting; w != nil {
			s += fmt.Sprintf(", waiting: %s %s", w.Reason, w.Message)
		}
		if t := st.State.Terminated; t != nil {
			s += fmt.Sprintf(", terminated: %s %s (exit %d)", t.Reason, t.Message, t.ExitCode)
		}
	}
	return s
}

func (c *Cluster) podEvents(ctx context.Context, cs kubernetes.Interface, name string) string {
	evs, err := cs.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, e := range evs.Items {
		if e.Type == corev1.EventTypeWarning {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return strings.Join(out, "; ")
}

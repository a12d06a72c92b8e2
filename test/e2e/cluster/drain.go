package cluster

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// drainPods stops the controller-manager (it would recreate pods), deletes
// every pod gracefully and waits until the kubelet has removed them: it
// stops their sandboxes (CNI DEL, network namespace removed) before it
// stops itself. A forced delete would not wait for that.
func (c *Cluster) drainPods(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.AdminConfig)
	if err != nil {
		return err
	}
	for _, p := range c.procs {
		if p.name == "kube-controller-manager" {
			p.stop(10 * time.Second)
		}
	}
	grace := int64(1)
	return wait.PollUntilContextTimeout(ctx, time.Second, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("listing pods: %w", err)
		}
		if len(pods.Items) == 0 {
			return true, nil
		}
		for _, p := range pods.Items {
			_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		}
		return false, nil
	})
}

package controllers

// The controller checks who calls it: agents' feed tokens with TokenReview
// (cmd/aerostat --feed-service-accounts), and /metrics callers with
// TokenReview and SubjectAccessReview (controller-runtime's metrics
// filter). Both are create-only and reveal nothing but the answer.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

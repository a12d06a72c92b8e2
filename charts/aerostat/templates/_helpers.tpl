{{/* Names are cut at 63 characters: the DNS label limit for Service names. */}}
{{- define "aerostat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aerostat.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Component names leave room for the suffix. */}}
{{- define "aerostat.controller.fullname" -}}
{{- printf "%s-controller" (include "aerostat.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}
{{- define "aerostat.agent.fullname" -}}
{{- printf "%s-agent" (include "aerostat.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}
{{- define "aerostat.store.fullname" -}}
{{- printf "%s-store" (include "aerostat.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}
{{- define "aerostat.feed.fullname" -}}
{{- printf "%s-feed" (include "aerostat.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{- define "aerostat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aerostat.labels" -}}
helm.sh/chart: {{ include "aerostat.chart" . }}
{{ include "aerostat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aerostat
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "aerostat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aerostat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Usage: include "aerostat.componentLabels" (list . "controller") */}}
{{- define "aerostat.componentLabels" -}}
{{ include "aerostat.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}
{{- define "aerostat.componentSelectorLabels" -}}
{{ include "aerostat.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "aerostat.agentImage" -}}
{{- if .Values.agentImage.digest }}
{{- printf "%s@%s" .Values.agentImage.repository .Values.agentImage.digest }}
{{- else }}
{{- printf "%s:%s" .Values.agentImage.repository (default .Chart.AppVersion .Values.agentImage.tag) }}
{{- end }}
{{- end }}

{{- define "aerostat.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "aerostat.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "aerostat.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "aerostat.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "aerostat.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Cross-field checks that values.schema.json cannot word clearly. Every
template includes this so a bad combination fails the whole render.
*/}}
{{- define "aerostat.validate" -}}
{{- if and .Values.mongodb.existingSecret .Values.store.enabled }}
{{- fail "mongodb.existingSecret and store.enabled=true are both set: choose one (production: --set store.enabled=false; trial: leave mongodb.existingSecret empty)" }}
{{- end }}
{{- if and (not .Values.mongodb.existingSecret) (not .Values.store.enabled) }}
{{- fail "no MongoDB configured: set mongodb.existingSecret to a Secret holding the URI (key \"uri\"), or store.enabled=true for the trial store" }}
{{- end }}
{{- if and .Values.agent.enabled (eq .Values.agent.source "mongodb") (not .Values.agent.mongodb.existingSecret) }}
{{- fail "agent.source=mongodb needs agent.mongodb.existingSecret: a Secret with a read-only user's URI (agents must not hold read-write credentials)" }}
{{- end }}
{{- if hasSuffix "/hosts" (trimSuffix "/" .Values.agent.hostEtcDir) }}
{{- fail (printf "agent.hostEtcDir=%q names the hosts file: give its directory (e.g. /etc) and the file's name in agent.hostsFileName" .Values.agent.hostEtcDir) }}
{{- end }}
{{- if and .Values.agent.hostsDirectory (has (trimSuffix "/" .Values.agent.hostsDirectory) (list "" "/etc" "/" "/var" "/var/lib" "/root" "/usr" "/run")) }}
{{- fail (printf "agent.hostsDirectory=%q is a system directory: give a directory that holds nothing but the hosts file (e.g. /etc/aerostat), so the agent can write nothing else" .Values.agent.hostsDirectory) }}
{{- end }}
{{- if and (not .Values.controller.leaderElection) (gt (int .Values.controller.replicas) 1) }}
{{- fail (printf "controller.leaderElection=false with controller.replicas=%d: more than one replica needs leader election" (int .Values.controller.replicas)) }}
{{- end }}
{{- end }}

{{/* The MongoDB URI the controller uses, as an env var from a Secret or the store Service. */}}
{{- define "aerostat.controller.mongodbEnv" -}}
{{- if .Values.mongodb.existingSecret }}
- name: AEROSTAT_SERVER
  valueFrom:
    secretKeyRef:
      name: {{ .Values.mongodb.existingSecret }}
      key: {{ .Values.mongodb.existingSecretKey }}
{{- else }}
- name: AEROSTAT_SERVER
  value: {{ printf "mongodb://%s.%s.svc:%d/?tls=true&tlsCAFile=/etc/aerostat/store-tls/ca.crt&tlsCertificateKeyFile=/etc/aerostat/store-tls/client.pem" (include "aerostat.store.fullname" .) .Release.Namespace (int .Values.store.port) | quote }}
{{- end }}
{{- end }}

{{- define "aerostat.feedURL" -}}
{{- printf "https://%s.%s.svc:%d" (include "aerostat.feed.fullname" .) .Release.Namespace (int .Values.controller.ports.feed) }}
{{- end }}

{{/* IRSA: roleArn becomes eks.amazonaws.com/role-arn. Argument: a serviceAccount values block. */}}
{{- define "aerostat.serviceAccountAnnotations" -}}
{{- $a := deepCopy (default dict .annotations) }}
{{- if .roleArn }}
{{- $_ := set $a "eks.amazonaws.com/role-arn" .roleArn }}
{{- end }}
{{- if $a }}
{{- toYaml $a }}
{{- end }}
{{- end }}

{{/* The Secret holding the feed's certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "aerostat.feed.tlsSecret" -}}
{{- default (printf "%s-tls" (include "aerostat.feed.fullname" . | trunc 59 | trimSuffix "-")) .Values.controller.feed.tls.existingSecret }}
{{- end }}

{{/* The trial store's CA, server certificate and the controller's client certificate. */}}
{{- define "aerostat.store.tlsSecret" -}}
{{- printf "%s-tls" (include "aerostat.store.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "psa-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "psa-operator.fullname" -}}
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

{{- define "psa-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "psa-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "psa-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "psa-operator.labels" -}}
helm.sh/chart: {{ include "psa-operator.chart" . }}
{{ include "psa-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: psa-operator
{{- end }}

{{- define "psa-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "psa-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "psa-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "psa-operator.storeClaimName" -}}
{{- default (printf "%s-store" (include "psa-operator.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
Rules the operator needs in every watched namespace. Keep equal to
config/rbac/required-permissions.yaml (scope: watched); a test compares them.
*/}}
{{- define "psa-operator.watchedRules" -}}
- apiGroups: [psa-operator.io]
  resources: [psaconnections, customermappings]
  verbs: [list, watch]
- apiGroups: [psa-operator.io]
  resources: [contractservices]
  verbs: [get, list, watch, patch]
- apiGroups: [psa-operator.io]
  resources: [psaconnections/status, customermappings/status, contractservices/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* Whether the store is a shared PostgreSQL database. */}}
{{- define "psa-operator.sharedStore" -}}
{{- if .Values.store.postgres.urlSecretRef.name }}true{{ end -}}
{{- end }}

{{/* Whether to run leader election: `auto` = with a shared store. */}}
{{- define "psa-operator.leaderElect" -}}
{{- $e := .Values.leaderElection.enabled -}}
{{- if eq (toString $e) "auto" }}{{ include "psa-operator.sharedStore" . }}{{ else if $e }}true{{ end -}}
{{- end }}

{{/* Labels of the CRDs: the chart's, without the component (CRDs belong to no one pod). */}}
{{- define "psa-operator.crdLabels" -}}
helm.sh/chart: {{ include "psa-operator.chart" . }}
app.kubernetes.io/name: {{ include "psa-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: psa-operator
{{- end }}

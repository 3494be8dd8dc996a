{{- define "vfe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vfe.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "vfe.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "vfe.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "vfe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vfe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vfe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name (.Chart.Version | replace "+" "_") }}
{{ include "vfe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "vfe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vfe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The chart's own Secret is needed when a password or tokens are given inline. */}}
{{- define "vfe.ownSecret" -}}
{{- if or (and .Values.em.password (not .Values.em.existingSecret.name)) (and .Values.actions.enabled .Values.actions.tokens (not .Values.actions.existingSecret.name)) }}true{{ end }}
{{- end }}

{{- define "vfe.emSecretName" -}}
{{- default (include "vfe.fullname" .) .Values.em.existingSecret.name }}
{{- end }}

{{- define "vfe.actionsSecretName" -}}
{{- default (include "vfe.fullname" .) .Values.actions.existingSecret.name }}
{{- end }}

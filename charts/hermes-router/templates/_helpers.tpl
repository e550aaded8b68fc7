{{/* Names: everything hangs off the InferencePool name, as the product documents. */}}
{{- define "hermes.poolName" -}}
{{- required "inferencepool.name is required" .Values.inferencepool.name | trunc 59 | trimSuffix "-" -}}
{{- end -}}

{{/* EPP name and pod label value: <pool>-epp. */}}
{{- define "hermes.eppName" -}}
{{- printf "%s-epp" (include "hermes.poolName" .) -}}
{{- end -}}

{{- define "hermes.serviceAccountName" -}}
{{- default (include "hermes.eppName" .) .Values.inferencepool.inferenceExtension.serviceAccount.name -}}
{{- end -}}

{{- define "hermes.redisName" -}}
{{- printf "%s-redis" (include "hermes.poolName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Whether the EPP uses Redis, and whether this chart deploys it. */}}
{{- define "hermes.redisOn" -}}
{{- if or .Values.redis.enabled .Values.redis.externalUrl -}}true{{- end -}}
{{- end -}}
{{- define "hermes.redisDeployed" -}}
{{- if and .Values.redis.enabled (not .Values.redis.externalUrl) -}}true{{- end -}}
{{- end -}}

{{- define "hermes.redisUrl" -}}
{{- if .Values.redis.externalUrl -}}
{{- .Values.redis.externalUrl -}}
{{- else -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "rediss" "redis" .Values.redis.tls.enabled) (include "hermes.redisName" .) .Release.Namespace (int .Values.redis.port) -}}
{{- end -}}
{{- end -}}

{{/* Replicas: explicit, else 2 with shared state in Redis, else 1. */}}
{{- define "hermes.replicas" -}}
{{- $r := .Values.inferencepool.inferenceExtension.replicas -}}
{{- if kindIs "invalid" $r -}}
{{- if include "hermes.redisOn" . }}2{{ else }}1{{ end -}}
{{- else -}}
{{- int $r -}}
{{- end -}}
{{- end -}}

{{- define "hermes.image" -}}
{{- $img := .Values.inferencepool.inferenceExtension.image -}}
{{- $repo := ternary (printf "%s/%s" $img.registry $img.repository) $img.repository (ne $img.registry "") -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion $img.tag) -}}
{{- end -}}

{{- define "hermes.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: hermes-router
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector of the EPP pods: the documented label inferencepool=<name>-epp. */}}
{{- define "hermes.eppSelector" -}}
inferencepool: {{ include "hermes.eppName" . }}
{{- end -}}

{{/* The ConfigMap's keys: the default config plus every custom one. */}}
{{- define "hermes.configKeys" -}}
{{- $keys := list "default-plugins.yaml" -}}
{{- range $k, $_ := .Values.inferencepool.inferenceExtension.pluginsCustomConfig -}}
{{- $keys = append $keys $k -}}
{{- end -}}
{{- $keys | uniq | join "," -}}
{{- end -}}

{{/* The bundled Redis with TLS (a secret is required then). */}}
{{- define "hermes.redisTls" -}}
{{- if and (include "hermes.redisDeployed" .) .Values.redis.tls.enabled -}}
{{- required "redis.tls.secretName is required when redis.tls.enabled" .Values.redis.tls.secretName | empty | not -}}
{{- end -}}
{{- end -}}

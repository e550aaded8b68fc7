{{- define "vllmpd.modelLabel" -}}
{{- .Values.modelServer.name | lower | replace "/" "-" | replace "." "-" | replace "_" "-" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of one PD pod: dict "root" $ "group" <id> "role" <label value>. */}}
{{- define "vllmpd.podLabels" -}}
{{- $l := .root.Values.pd.labels -}}
app.kubernetes.io/name: {{ .root.Release.Name }}
openfuyao.com/model: {{ include "vllmpd.modelLabel" .root }}
{{ $l.pdLabelName }}: {{ .role }}
{{ $l.pdGroupLabelName }}: {{ .group }}
{{- with .root.Values.modelServer.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

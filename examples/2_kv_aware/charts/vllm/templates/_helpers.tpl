{{/* openfuyao.com/model label value: Qwen/Qwen3-8B -> qwen-qwen3-8b. */}}
{{- define "vllm.modelLabel" -}}
{{- .Values.modelServer.name | lower | replace "/" "-" | replace "." "-" | replace "_" "-" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

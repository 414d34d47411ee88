{{/* Labels every object carries: the kustomize base's (name, component, part-of, version)
plus Helm's. Call with (dict "root" $ "component" "operator"); component may be empty. */}}
{{- define "aura.labels" -}}
app.kubernetes.io/name: aura
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/part-of: aura
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "aura.selector" -}}
app.kubernetes.io/name: aura
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "aura.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}

{{- define "aura.credentialsSecret" -}}
{{ .Values.credentials.existingSecret | default "aura-operator-credentials" }}
{{- end }}

{{- define "aura.bridgeSecret" -}}
{{ .Values.bridge.existingSecret | default "aura-bridge-secrets" }}
{{- end }}

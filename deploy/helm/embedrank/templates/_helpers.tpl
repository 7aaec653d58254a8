{{- define "embedrank.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "embedrank.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "embedrank.selectorLabels" -}}
app.kubernetes.io/name: {{ include "embedrank.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "embedrank.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "embedrank.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* A health check over TLS, for exec probes: kubelet's gRPC probes cannot speak TLS. */}}
{{- define "embedrank.tlsProbe" -}}
- python
- -c
- |
  import grpc, sys
  from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g
  d = "/etc/embedrank/tls/"
  read = lambda n: open(d + n, "rb").read()
  creds = grpc.ssl_channel_credentials(read("ca.crt"){{ if .Values.tls.mutual }}, read("tls.key"), read("tls.crt"){{ end }})
  opts = [("grpc.ssl_target_name_override", {{ required "tls.serverName: the name in the server certificate" .Values.tls.serverName | quote }})]
  ch = grpc.secure_channel("127.0.0.1:{{ .Values.port }}", creds, options=opts)
  sys.exit(g.HealthStub(ch).Check(h.HealthCheckRequest(), timeout=3).status != h.HealthCheckResponse.SERVING)
{{- end -}}

{{- define "embedrank.probe" -}}
{{- if .root.Values.tls.enabled }}
exec:
  command:
    {{- include "embedrank.tlsProbe" .root | nindent 4 }}
{{- else }}
grpc:
  port: {{ .root.Values.port }}
  service: ""
{{- end }}
periodSeconds: {{ .probe.periodSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- with .probe.timeoutSeconds }}
timeoutSeconds: {{ . }}
{{- end }}
{{- end -}}

{{/* One models.export.models entry as `embedrank pull --model`'s NAME=SOURCE[@REVISION][:OPTION=VALUE,...]. */}}
{{- define "embedrank.modelSpec" -}}
{{- $opts := list -}}
{{- range $k, $v := .options -}}
{{- $opts = append $opts (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- required "models.export.models[].name" .name }}={{ required "models.export.models[].source" .source -}}
{{- with .revision }}@{{ . }}{{ end -}}
{{- if $opts }}:{{ join "," $opts }}{{ end -}}
{{- end -}}

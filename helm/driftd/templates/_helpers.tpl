{{/*
Names and labels. Every helper takes the chart's root context; from a chart that has driftd
as a dependency, that is .Subcharts.driftd.
*/}}

{{- define "driftd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftd.fullname" -}}
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

{{- define "driftd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "driftd.labels" -}}
{{ include "driftd.selectorLabels" . }}
app.kubernetes.io/component: {{ .Values.mode }}
app.kubernetes.io/managed-by: {{ .Release.Service | default "Helm" }}
{{- with .Chart.Version }}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name . | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- end }}

{{- define "driftd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "driftd.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | default "latest" }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The address of the main listener: all interfaces standalone, loopback as a sidecar. */}}
{{- define "driftd.listen" -}}
{{- if eq .Values.mode "sidecar" }}
{{- printf "127.0.0.1:%d" (int .Values.ports.http) }}
{{- else }}
{{- printf "0.0.0.0:%d" (int .Values.ports.http) }}
{{- end }}
{{- end }}

{{/* "true" when driftd keeps its state in SQLite (no database URL given). */}}
{{- define "driftd.sqlite" -}}
{{- if not (or .Values.database.url .Values.database.existingSecret) }}true{{ end }}
{{- end }}

{{/* "true" when the chart's Secret must hold an API token. */}}
{{- define "driftd.ownsToken" -}}
{{- if not .Values.auth.existingSecret }}
{{- if .Values.auth.apiToken }}true
{{- else if and (eq .Values.mode "standalone") (not .Values.auth.allowUnauthenticated) }}true
{{- end }}
{{- end }}
{{- end }}

{{/* "true" when the token is generated (standalone, none given). */}}
{{- define "driftd.generatesToken" -}}
{{- if and (include "driftd.ownsToken" .) (not .Values.auth.apiToken) }}true{{ end }}
{{- end }}

{{/* The chart's Secret data (base64): whatever was given inline, and a generated token. */}}
{{- define "driftd.secretData" -}}
{{- if include "driftd.ownsToken" . }}
{{- if .Values.auth.apiToken }}
api-token: {{ .Values.auth.apiToken | b64enc }}
{{- else }}
{{- /* Keep the token an earlier install generated: pods and clients already use it. */}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "driftd.fullname" .) }}
{{- $previous := "" }}
{{- if and $existing $existing.data }}
{{- $previous = index $existing.data "api-token" | default "" }}
{{- end }}
api-token: {{ $previous | default (randAlphaNum 48 | b64enc) }}
{{- end }}
{{- end }}
{{- if and .Values.database.url (not .Values.database.existingSecret) }}
database-url: {{ .Values.database.url | b64enc }}
{{- end }}
{{- if and .Values.slack.webhookUrl (not .Values.slack.existingSecret) }}
slack-webhook-url: {{ .Values.slack.webhookUrl | b64enc }}
{{- end }}
{{- end }}

{{/* "https" when the listener (api or metrics) serves TLS, else "http". */}}
{{- define "driftd.scheme" -}}
{{- $ctx := index . 0 -}}{{- $listener := index . 1 -}}
{{- if and $ctx.Values.tls.enabled (has $ctx.Values.tls.listeners (list "all" $listener)) }}https{{ else }}http{{ end }}
{{- end }}

{{/* env entry NAME taken from a Secret: the user's existingSecret or the chart's own. */}}
{{- define "driftd.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | default .fullname }}
      key: {{ if .existingSecret }}{{ .existingSecretKey }}{{ else }}{{ .key }}{{ end }}
{{- end }}

{{/* Refuses values that would deploy something broken or unsafe, with what to do instead. */}}
{{- define "driftd.validate" -}}
{{- if not (has .Values.mode (list "standalone" "sidecar")) }}
{{- fail (printf "mode must be \"standalone\" or \"sidecar\", not %q" (toString .Values.mode)) }}
{{- end }}
{{- if and (eq .Values.mode "standalone") (gt (int .Values.replicaCount) 1) (include "driftd.sqlite" .) }}
{{- fail (printf "replicaCount is %d, but several driftd replicas need PostgreSQL: SQLite is one process and refuses a second. Set database.url (postgres://…) or database.existingSecret, or replicaCount: 1." (int .Values.replicaCount)) }}
{{- end }}
{{- with .Values.database.url }}
{{- if not (or (hasPrefix "postgres://" .) (hasPrefix "postgresql://" .) (hasPrefix "sqlite:" .)) }}
{{- fail "database.url must start with postgres://, postgresql:// or sqlite:" }}
{{- end }}
{{- if and (hasPrefix "sqlite:" .) (eq $.Values.mode "standalone") (gt (int $.Values.replicaCount) 1) }}
{{- fail (printf "replicaCount is %d, but database.url is SQLite: several driftd replicas need PostgreSQL." (int $.Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- if and .Values.persistence.enabled (eq .Values.mode "sidecar") }}
{{- fail "persistence is for standalone mode: a sidecar's SQLite file lives in an emptyDir (or give database.url)" }}
{{- end }}
{{- if and (eq .Values.mode "standalone") .Values.sidecar.modelServer }}
{{- fail "sidecar.modelServer is set but mode is standalone: set mode: sidecar" }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- if not .Values.tls.existingSecret }}
{{- fail "tls.enabled needs tls.existingSecret: a kubernetes.io/tls Secret with tls.crt and tls.key (e.g. from a cert-manager Certificate)" }}
{{- end }}
{{- if not (has .Values.tls.listeners (list "all" "api" "metrics")) }}
{{- fail (printf "tls.listeners must be all, api or metrics, not %q" (toString .Values.tls.listeners)) }}
{{- end }}
{{- end }}
{{- if kindIs "map" .Values.config }}
{{- range $key := list "database_url" "slack_webhook_url" "webhook_url" "webhook_secret" "alertmanager_url" "api_token" }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s is a secret and would land in a ConfigMap: use database.url / slack.webhookUrl (or their existingSecret), or extraEnv with valueFrom.secretKeyRef (DRIFTD_%s)" $key (upper $key)) }}
{{- end }}
{{- end }}
{{- range $key := list "listen" "metrics_listen" "allow_unauthenticated" "tls_cert" "tls_key" "tls_listeners" }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s is set by the chart: use ports.http / ports.metrics / auth.allowUnauthenticated / tls" $key) }}
{{- end }}
{{- end }}
{{- with .Values.config.auth }}
{{- range (.tokens | default list) }}
{{- if and (kindIs "map" .) (hasKey . "token") }}
{{- fail (printf "config.auth.tokens: token %q is given in clear and would land in a ConfigMap: give its sha256 instead (sha256: \"<hex>\")" (toString (.name | default "?"))) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* driftd's configuration file: the user's config, and allow_unauthenticated. */}}
{{- define "driftd.configFile" -}}
{{- if kindIs "string" .Values.config }}
{{- .Values.config }}
{{- if .Values.auth.allowUnauthenticated }}
allow_unauthenticated: true
{{- end }}
{{- else }}
{{- $config := deepCopy .Values.config }}
{{- if .Values.auth.allowUnauthenticated }}
{{- $_ := set $config "allow_unauthenticated" true }}
{{- end }}
{{- if $config }}
{{- toYaml $config }}
{{- else }}
{}
{{- end }}
{{- end }}
{{- end }}

{{/*
driftd's container. Include it in the containers of your own pod (sidecar mode):
  containers:
    - name: my-model
      ...
    {{- include "driftd.sidecarContainer" .Subcharts.driftd | nindent 4 }}
  volumes:
    {{- include "driftd.sidecarVolumes" .Subcharts.driftd | nindent 4 }}
with driftd as a dependency of your chart (mode: sidecar, no sidecar.modelServer: the
dependency then renders only driftd's ConfigMap and Secret).
*/}}
{{- define "driftd.sidecarContainer" -}}
{{- include "driftd.validate" . }}
{{- $fullname := include "driftd.fullname" . -}}
- name: driftd
  image: {{ include "driftd.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args: [serve, --config, /etc/driftd/driftd.yaml]
  ports:
    {{- if eq .Values.mode "standalone" }}
    - name: http
      containerPort: {{ .Values.ports.http }}
      protocol: TCP
    {{- end }}
    - name: metrics
      containerPort: {{ .Values.ports.metrics }}
      protocol: TCP
  env:
    - name: DRIFTD_LISTEN
      value: {{ include "driftd.listen" . | quote }}
    - name: DRIFTD_METRICS_LISTEN
      value: {{ printf "0.0.0.0:%d" (int .Values.ports.metrics) | quote }}
    {{- if include "driftd.sqlite" . }}
    - name: DRIFTD_DATABASE_URL
      value: sqlite:///var/lib/driftd/driftd.db
    {{- else }}
    {{- include "driftd.secretEnv" (dict "name" "DRIFTD_DATABASE_URL" "fullname" $fullname "key" "database-url" "existingSecret" .Values.database.existingSecret "existingSecretKey" .Values.database.existingSecretKey) | nindent 4 }}
    {{- end }}
    {{- /* Each pod writes its own partial of every open window; a restarted container continues it. */}}
    - name: DRIFTD_WRITER_ID
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    {{- if or .Values.auth.existingSecret (include "driftd.ownsToken" .) }}
    {{- include "driftd.secretEnv" (dict "name" "DRIFTD_API_TOKEN" "fullname" $fullname "key" "api-token" "existingSecret" .Values.auth.existingSecret "existingSecretKey" .Values.auth.existingSecretKey) | nindent 4 }}
    {{- end }}
    {{- if or .Values.slack.webhookUrl .Values.slack.existingSecret }}
    {{- include "driftd.secretEnv" (dict "name" "DRIFTD_SLACK_WEBHOOK_URL" "fullname" $fullname "key" "slack-webhook-url" "existingSecret" .Values.slack.existingSecret "existingSecretKey" .Values.slack.existingSecretKey) | nindent 4 }}
    {{- end }}
    {{- if .Values.rules }}
    - name: DRIFTD_RULES
      value: /etc/driftd/rules
    {{- end }}
    {{- if .Values.tls.enabled }}
    - name: DRIFTD_TLS_CERT
      value: /etc/driftd/tls/tls.crt
    - name: DRIFTD_TLS_KEY
      value: /etc/driftd/tls/tls.key
    - name: DRIFTD_TLS_LISTENERS
      value: {{ .Values.tls.listeners | quote }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    httpGet: {path: /healthz, port: metrics{{ if eq (include "driftd.scheme" (list . "metrics")) "https" }}, scheme: HTTPS{{ end }}}
    periodSeconds: {{ .Values.probes.startup.periodSeconds }}
    failureThreshold: {{ .Values.probes.startup.failureThreshold }}
  readinessProbe:
    httpGet: {path: /readyz, port: metrics{{ if eq (include "driftd.scheme" (list . "metrics")) "https" }}, scheme: HTTPS{{ end }}}
    periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
  livenessProbe:
    httpGet: {path: /healthz, port: metrics{{ if eq (include "driftd.scheme" (list . "metrics")) "https" }}, scheme: HTTPS{{ end }}}
    periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: driftd-config
      mountPath: /etc/driftd/driftd.yaml
      subPath: driftd.yaml
      readOnly: true
    {{- if .Values.rules }}
    - name: driftd-rules
      mountPath: /etc/driftd/rules
      readOnly: true
    {{- end }}
    {{- if include "driftd.sqlite" . }}
    - name: driftd-data
      mountPath: /var/lib/driftd
    {{- end }}
    - name: driftd-tmp
      mountPath: /tmp
    {{- if .Values.tls.enabled }}
    - name: driftd-tls
      mountPath: /etc/driftd/tls
      readOnly: true
    {{- end }}
{{- end }}

{{/* The volumes driftd.sidecarContainer mounts. */}}
{{- define "driftd.sidecarVolumes" -}}
{{- $fullname := include "driftd.fullname" . -}}
- name: driftd-config
  configMap:
    name: {{ $fullname }}
{{- if .Values.rules }}
- name: driftd-rules
  configMap:
    name: {{ $fullname }}-rules
{{- end }}
{{- if include "driftd.sqlite" . }}
- name: driftd-data
  {{- if and (eq .Values.mode "standalone") .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ .Values.persistence.existingClaim | default $fullname }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ .Values.persistence.emptyDirSizeLimit }}
  {{- end }}
{{- end }}
- name: driftd-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.tls.enabled }}
- name: driftd-tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{/*
Helpers of the engagement-pipeline chart: names, labels, the image, and the container every
pipeline stage runs (`engage <args>` with the ConfigMap and Secret as its environment, probes on
HEALTH_PORT).
*/}}

{{- define "ep.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ep.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one stage: (dict "root" $ "stage" "processor") */}}
{{- define "ep.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .stage }}
{{- end -}}

{{- define "ep.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ep.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-settings" (include "ep.fullname" .)) -}}
{{- end -}}

{{/* The consumer group of a stage, as the pipeline names it (src/processor, src/runtime/sink-runner-options.ts). */}}
{{- define "ep.group" -}}
{{- if eq .stage "processor" -}}
engage-processor.{{ .root.Values.kafka.clientId }}
{{- else -}}
engage-{{ .stage }}.{{ .root.Values.kafka.clientId }}
{{- end -}}
{{- end -}}

{{/* Refuses a consumer stage's replica count above the partition count. */}}
{{- define "ep.checkReplicas" -}}
{{- $partitions := int .root.Values.kafka.partitions -}}
{{- if gt (int .replicas) $partitions -}}
{{- fail (printf "%s: %d replicas but the topic has %d partitions (kafka.partitions): a consumer beyond the partition count holds nothing" .stage (int .replicas) $partitions) -}}
{{- end -}}
{{- end -}}

{{/*
The pod spec of one pipeline stage: (dict "root" $ "stage" "sink-redis" "args" (list "sink" "redis")
"resources" ... "env" (dict ...) "volume" persistence-or-nil).
*/}}
{{- define "ep.podSpec" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
containers:
  - name: {{ .stage }}
    image: {{ include "ep.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    envFrom:
      - configMapRef:
          name: {{ include "ep.fullname" $root }}-settings
      - secretRef:
          name: {{ include "ep.secretName" $root }}
    {{- if or .env .volume }}
    env:
      {{- range $k, $v := .env }}
      - name: {{ $k }}
        value: {{ $v | quote }}
      {{- end }}
      {{- if .volume }}
      - name: {{ .volume.variable }}
        value: {{ .volume.path | quote }}
      {{- end }}
    {{- end }}
    ports:
      - name: health
        containerPort: {{ $root.Values.healthPort }}
    livenessProbe:
      httpGet: { path: /health/live, port: health }
      {{- toYaml $root.Values.probes.liveness | nindent 6 }}
    readinessProbe:
      httpGet: { path: /health/ready, port: health }
      {{- toYaml $root.Values.probes.readiness | nindent 6 }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if .volume }}
      - name: data
        mountPath: /data
      {{- end }}
volumes:
  - name: tmp
    emptyDir: {}
  {{- if .volume }}
  - name: data
    persistentVolumeClaim:
      claimName: {{ include "ep.fullname" $root }}-{{ .stage }}
  {{- end }}
{{- end -}}

{{/* Names, labels and the derived values every template shares. */}}

{{- define "ledger.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: the StatefulSet, the client Service and the prefix of the rest.
Kept short enough that "<fullname>-headless" and pod names ("<fullname>-N") fit in 63.
*/}}
{{- define "ledger.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ledger.headless" -}}
{{- printf "%s-headless" (include "ledger.fullname" .) }}
{{- end }}

{{/* The readers' StatefulSet (pods "<fullname>-reader-N"), its headless Service (their
stable DNS names, which they advertise) and the client Service over ready readers. */}}
{{- define "ledger.readerName" -}}
{{- printf "%s-reader" (include "ledger.fullname" .) }}
{{- end }}

{{- define "ledger.readerHeadless" -}}
{{- printf "%s-reader-headless" (include "ledger.fullname" .) }}
{{- end }}

{{- define "ledger.readService" -}}
{{- printf "%s-read" (include "ledger.fullname" .) }}
{{- end }}

{{- define "ledger.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object but the selector's (pod templates add a selector's own). */}}
{{- define "ledger.commonLabels" -}}
helm.sh/chart: {{ include "ledger.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ledger
{{- end }}

{{- define "ledger.labels" -}}
{{ include "ledger.commonLabels" . }}
app.kubernetes.io/name: {{ include "ledger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The voters' selector labels. */}}
{{- define "ledger.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ledger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: voter
{{- end }}

{{/* The readers' (read replicas, Raft learners) selector labels. */}}
{{- define "ledger.readerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ledger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: reader
{{- end }}

{{- define "ledger.archiverSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ledger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: archiver
{{- end }}

{{- define "ledger.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ledger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{- define "ledger.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ledger.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[@digest | :tag], from an image block and a fallback tag. */}}
{{- define "ledger.imageRef" -}}
{{- $image := index . 0 }}
{{- $tag := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $tag $image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "ledger.image" -}}
{{- include "ledger.imageRef" (list .Values.image .Chart.AppVersion) }}
{{- end }}

{{- define "ledger.archiverImage" -}}
{{- if .Values.archiver.image.repository }}
{{- include "ledger.imageRef" (list .Values.archiver.image .Chart.AppVersion) }}
{{- else }}
{{- include "ledger.image" . }}
{{- end }}
{{- end }}

{{/* The stable DNS name of voter N: <sts>-N.<headless>.<namespace>.svc.<domain>. */}}
{{- define "ledger.podHost" -}}
{{- $root := index . 0 }}
{{- $ordinal := index . 1 }}
{{- printf "%s-%d.%s.%s.svc.%s" (include "ledger.fullname" $root) $ordinal (include "ledger.headless" $root) $root.Release.Namespace $root.Values.clusterDomain }}
{{- end }}

{{/*
LEDGER_PEERS: every voter as ID=RPC_HOST:PORT/API_HOST:PORT. The node id is the pod
ordinal (the binary reads it from the hostname's -N suffix), so entry N is pod N.
*/}}
{{- define "ledger.peers" -}}
{{- $root := . }}
{{- $entries := list }}
{{- range $i := until (int .Values.replicaCount) }}
{{- $host := include "ledger.podHost" (list $root $i) }}
{{- $entries = append $entries (printf "%d=%s:%d/%s:%d" $i $host (int $root.Values.ports.rpc) $host (int $root.Values.ports.api)) }}
{{- end }}
{{- join "," $entries }}
{{- end }}

{{/*
LEDGER_ADVERTISE of a reader: RPC_HOST:PORT/API_HOST:PORT under the readers' headless
Service. $(POD_NAME) is expanded by the kubelet from the container's POD_NAME variable
(the downward API), which must come before LEDGER_ADVERTISE in the env list.
*/}}
{{- define "ledger.readerAdvertise" -}}
{{- $host := printf "$(POD_NAME).%s.%s.svc.%s" (include "ledger.readerHeadless" .) .Release.Namespace .Values.clusterDomain }}
{{- printf "%s:%d/%s:%d" $host (int .Values.ports.rpc) $host (int .Values.ports.api) }}
{{- end }}

{{/* The voters' API addresses, HOST:PORT comma-separated (the archiver's source). */}}
{{- define "ledger.apiAddresses" -}}
{{- $root := . }}
{{- $entries := list }}
{{- range $i := until (int .Values.replicaCount) }}
{{- $entries = append $entries (printf "%s:%d" (include "ledger.podHost" (list $root $i)) (int $root.Values.ports.api)) }}
{{- end }}
{{- join "," $entries }}
{{- end }}

{{/* Refuses values that cannot make a working cluster. */}}
{{- define "ledger.validate" -}}
{{- $replicas := int .Values.replicaCount }}
{{- if not (or (eq $replicas 1) (eq $replicas 3) (eq $replicas 5)) }}
{{- fail (printf "replicaCount must be 1, 3 or 5 voters (got %d): an even count adds no fault tolerance, and changing it on a running cluster is a membership change (README \"Operations\")" $replicas) }}
{{- end }}
{{- with .Values.gateway }}
{{- if .enabled }}
{{- fail "gateway.enabled was removed: the autoscaled tier is the read replicas, readers.enabled (README \"Operations\", Scale)" }}
{{- end }}
{{- end }}
{{- if .Values.readers.enabled }}
{{- $r := .Values.readers }}
{{- if lt (int64 $r.nodeIdBase) (int64 $replicas) }}
{{- fail (printf "readers.nodeIdBase (%d) must be at least replicaCount (%d): reader ids (nodeIdBase + ordinal) must never be a voter's" (int64 $r.nodeIdBase) $replicas) }}
{{- end }}
{{- if lt (int $r.autoscaling.minReplicas) 1 }}
{{- fail "readers.autoscaling.minReplicas must be at least 1" }}
{{- end }}
{{- if lt (int $r.autoscaling.maxReplicas) (int $r.autoscaling.minReplicas) }}
{{- fail "readers.autoscaling.maxReplicas must be at least readers.autoscaling.minReplicas" }}
{{- end }}
{{- end }}
{{- if and .Values.archiver.enabled (not .Values.archiver.database.existingSecret) }}
{{- fail "archiver.enabled needs archiver.database.existingSecret: a Secret holding the PostgreSQL URL" }}
{{- end }}
{{- if not (has .Values.config.logFormat (list "json" "text")) }}
{{- fail "config.logFormat must be json or text" }}
{{- end }}
{{- end }}

{{/* Who may reach the API (and archiver) ports: the configured clients, plus the voters, the
archiver and the helm test pod. */}}
{{- define "ledger.apiPeers" -}}
{{- if .Values.networkPolicy.api.from }}
{{- toYaml .Values.networkPolicy.api.from }}
{{- else -}}
# Any pod in any namespace of this cluster.
- namespaceSelector: {}
{{- end }}
- podSelector:
    matchLabels:
      {{- include "ledger.selectorLabels" . | nindent 6 }}
- podSelector:
    matchLabels:
      {{- include "ledger.archiverSelectorLabels" . | nindent 6 }}
- podSelector:
    matchLabels:
      {{- include "ledger.testSelectorLabels" . | nindent 6 }}
{{- end }}

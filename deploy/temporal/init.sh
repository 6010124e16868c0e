#!/bin/sh
# One-shot: make the Temporal namespace ready for durable-agent, or fail loudly.
#   1. wait until the frontend is SERVING;
#   2. create the namespace if it is missing;
#   3. register each of the task workflow's seven search attributes that is missing;
#   4. list them and exit non-zero naming every one that is still missing or mistyped.
# The API and the worker only check these at start-up (agent/temporal/search_attributes.py
# holds the same list); they wait for this job (compose: service_completed_successfully).
# The `temporal` CLI reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and, for a secured cluster,
# TEMPORAL_API_KEY and TEMPORAL_TLS_* from the environment.
set -eu
: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
RETENTION=${TEMPORAL_NAMESPACE_RETENTION:-168h}
ATTEMPTS=${TEMPORAL_INIT_ATTEMPTS:-60}
DELAY_SECONDS=${TEMPORAL_INIT_DELAY_SECONDS:-2}
ATTRIBUTES="TaskStatus=Keyword UserId=Keyword Complexity=Keyword AwaitingHuman=Bool CostUsd=Double CurrentMilestone=Keyword WaitingOn=Keyword"

retry() {
  what=$1
  shift
  attempt=1
  until "$@" >/dev/null 2>&1; do
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
      echo "temporal-init: $what failed after $ATTEMPTS attempts:" >&2
      "$@" >&2 || true
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep "$DELAY_SECONDS"
  done
}

# The attributes as JSON. Retried: right after the namespace is created, the operator API
# may not know it yet ("namespace not found") for a few seconds.
listed() {
  attempt=1
  until out=$(temporal operator search-attribute list --namespace "$NAMESPACE" --output json 2>&1); do
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
      echo "temporal-init: listing the search attributes of $NAMESPACE failed: $out" >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep "$DELAY_SECONDS"
  done
  printf '%s' "$out"
}

# `"CostUsd": "INDEXED_VALUE_TYPE_DOUBLE"` in the list's JSON.
has_attribute() {
  type_upper=$(printf '%s' "$2" | tr '[:lower:]' '[:upper:]')
  printf '%s' "$3" | grep -q "\"$1\": *\"INDEXED_VALUE_TYPE_$type_upper\""
}

echo "temporal-init: waiting for $TEMPORAL_ADDRESS"
retry "cluster health" sh -c 'temporal operator cluster health | grep -q SERVING'

if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "temporal-init: namespace $NAMESPACE exists"
else
  echo "temporal-init: creating namespace $NAMESPACE (retention $RETENTION)"
  # Another init job may win the race; the describe below is what counts.
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" || true
fi
retry "namespace $NAMESPACE" temporal operator namespace describe --namespace "$NAMESPACE"

# Register what is missing, then list again, until all six are there. A create that fails
# (another init job won the race, or the namespace is not known everywhere yet) is only
# reported: the next list decides.
attempt=1
while :; do
  current=$(listed)
  missing=""
  mistyped=""
  for attribute in $ATTRIBUTES; do
    if has_attribute "${attribute%%=*}" "${attribute##*=}" "$current"; then
      continue
    elif printf '%s' "$current" | grep -q "\"${attribute%%=*}\":"; then
      mistyped="$mistyped $attribute"
    else
      missing="$missing $attribute"
    fi
  done
  if [ -n "$mistyped" ]; then
    # Temporal cannot change an attribute's type; an operator has to decide.
    echo "temporal-init: namespace $NAMESPACE has search attributes of another type; needed:$mistyped" >&2
    exit 1
  fi
  [ -z "$missing" ] && break
  if [ "$attempt" -ge "$ATTEMPTS" ]; then
    echo "temporal-init: namespace $NAMESPACE still lacks search attributes:$missing" >&2
    exit 1
  fi
  for attribute in $missing; do
    echo "temporal-init: registering ${attribute%%=*} (${attribute##*=})"
    temporal operator search-attribute create --namespace "$NAMESPACE" \
      --name "${attribute%%=*}" --type "${attribute##*=}" || true
  done
  attempt=$((attempt + 1))
  sleep "$DELAY_SECONDS"
done
echo "temporal-init: namespace $NAMESPACE has all search attributes"

#!/usr/bin/env bash
# One-shot (docker-compose.yml, service kafka-sasl-acls, profile "sasl"), as odia-admin: one
# SCRAM-SHA-512 user per principal of acls.txt, with the password of its variable
# (odia-agents -> SASL_PASSWORD_AGENTS, passwords.sh), then exactly the ACLs of acls.txt
# (docs/security.md, "Kafka ACLs"). Idempotent: run it again after changing a password or the file
#   docker compose --profile sasl run --rm kafka-sasl-acls
# It adds; an ACL removed from acls.txt must be removed by hand (kafka-acls.sh --remove).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${KAFKA_BIN:-/opt/kafka/bin}
BOOTSTRAP=${KAFKA_BOOTSTRAP:-kafka-sasl:9094}
CA_FILE=${KAFKA_CA_FILE:-/etc/odia/kafka-tls/ca.crt}
ACLS=${KAFKA_ACLS_FILE:-$HERE/acls.txt}
. "$HERE/passwords.sh"

# The grants: principal, resource (topic | group | cluster | transactional-id), pattern (literal |
# prefixed), name, operations (comma-separated).
mapfile -t grants < <(grep -Ev '^[[:space:]]*(#|$)' "$ACLS")
principals=$(for line in "${grants[@]}"; do read -r principal _ <<<"$line"; echo "$principal"; done | sort -u)

require_password SASL_ADMIN_PASSWORD
for principal in $principals; do
  require_password "$(password_variable "$principal")"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
admin="$work/admin.properties"
write_admin_config "$admin" "$CA_FILE"

for principal in $principals; do
  variable=$(password_variable "$principal")
  echo "user $principal (password from $variable)"
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$admin" --alter \
    --entity-type users --entity-name "$principal" \
    --add-config "SCRAM-SHA-512=[password=${!variable}]" </dev/null >/dev/null
done

# One kafka-acls.sh run (a JVM start) per principal, resource type, pattern and operations, with
# every name that shares them.
declare -A names=()
order=()
for line in "${grants[@]}"; do
  read -r principal resource pattern name operations extra <<<"$line"
  if [[ -z ${operations:-} || -n ${extra:-} ]]; then
    echo "acls.txt: expected 'principal resource pattern name operations': $line" >&2
    exit 1
  fi
  case $resource in
    topic|group|transactional-id|cluster) ;;
    *) echo "acls.txt: unknown resource type $resource: $line" >&2; exit 1 ;;
  esac
  case $pattern in
    literal|prefixed) ;;
    *) echo "acls.txt: pattern must be literal or prefixed: $line" >&2; exit 1 ;;
  esac
  key="$principal $resource $pattern $operations"
  if [[ -z ${names[$key]+set} ]]; then
    order+=("$key")
    names[$key]=""
  fi
  names[$key]+=" $name"
done

for key in "${order[@]}"; do
  read -r principal resource pattern operations <<<"$key"
  targets=()
  for name in ${names[$key]}; do
    case $resource in
      topic) targets+=(--topic "$name") ;;
      group) targets+=(--group "$name") ;;
      transactional-id) targets+=(--transactional-id "$name") ;;
      cluster) targets=(--cluster) ;;
    esac
  done
  ops=()
  IFS=, read -ra listed <<<"$operations"
  for op in "${listed[@]}"; do ops+=(--operation "$op"); done
  echo "allow User:$principal $operations on $resource ($pattern):${names[$key]}"
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$admin" --add \
    --allow-principal "User:$principal" "${ops[@]}" "${targets[@]}" --resource-pattern-type "$pattern" \
    </dev/null >/dev/null
done

echo "ACLs now on the broker:"
"$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$admin" --list </dev/null

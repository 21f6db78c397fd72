#!/usr/bin/env bash
# The "sasl" profile's broker (docker-compose.yml, service kafka-sasl): server.properties plus the
# secrets, the storage formatted once with the admin's SCRAM credential, then Kafka itself.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${KAFKA_BIN:-/opt/kafka/bin}
SECRETS=${KAFKA_SECRETS_DIR:-/etc/kafka/secrets}
CONF_DIR=${KAFKA_SASL_CONF_DIR:-/tmp/odia-kafka}
. "$HERE/passwords.sh"
require_password SASL_ADMIN_PASSWORD

umask 077
mkdir -p "$CONF_DIR"
keystore_pass=$(cat "$SECRETS/kafka-sasl.p12.pass")
jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"odia-admin\" password=\"$SASL_ADMIN_PASSWORD\";"
{
  cat "$HERE/server.properties"
  echo
  echo "ssl.keystore.password=$keystore_pass"
  echo "ssl.key.password=$keystore_pass"
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas"
} > "$CONF_DIR/server.properties"
# The health check's client (docker-compose.yml), as odia-admin.
write_admin_config "$CONF_DIR/admin.properties" "$SECRETS/ca.crt"

# First start only: the cluster id and the admin's credential. Later starts keep both (the admin
# password is set here once; change it with kafka-configs.sh, then SASL_ADMIN_PASSWORD).
"$BIN/kafka-storage.sh" format --config "$CONF_DIR/server.properties" \
  --cluster-id "$("$BIN/kafka-storage.sh" random-uuid)" --ignore-formatted \
  --add-scram "SCRAM-SHA-512=[name=odia-admin,password=$SASL_ADMIN_PASSWORD]"

unset SASL_ADMIN_PASSWORD  # it is in the configuration now; Kafka's environment need not hold it
exec "$BIN/kafka-server-start.sh" "$CONF_DIR/server.properties"

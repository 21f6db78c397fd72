# Sourced by broker.sh and acls.sh: the SCRAM passwords come from the environment (compose reads
# them from the .env file or the shell; docs/security.md), never from a file of this repository.

# The variable holding the password of principal $1: odia-topics-init -> SASL_PASSWORD_TOPICS_INIT.
password_variable() {
  local name=${1#odia-}
  name=${name//-/_}
  echo "SASL_PASSWORD_${name^^}"
}

# Exit with a message unless variable $1 holds a usable password: 16 characters or more of
# A-Z a-z 0-9 . _ - (they go into JAAS strings and kafka-configs.sh arguments unquoted).
require_password() {
  local value=${!1:-}
  if [[ -z $value ]]; then
    echo "$1 is not set: put it in the .env file beside docker-compose.yml (docs/security.md)" >&2
    exit 1
  fi
  if (( ${#value} < 16 )) || [[ ! $value =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "$1 must be 16 or more characters of A-Z a-z 0-9 . _ - (e.g. openssl rand -hex 24)" >&2
    exit 1
  fi
}

# A Kafka client configuration for odia-admin over SASL_SSL, trusting CA file $2, written to $1 (mode 600).
write_admin_config() {
  (
    umask 077
    cat > "$1" <<CONFIG
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="odia-admin" password="$SASL_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$2
ssl.endpoint.identification.algorithm=https
CONFIG
  )
}

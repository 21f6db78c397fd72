#!/usr/bin/env bash
# One-shot (docker-compose.yml, service kafka-sasl-certs, profile "sasl"): a private CA and the
# broker's TLS certificate, made with keytool (the apache/kafka image's JRE) on the first run only.
#
#   kafka-sasl-secrets (/etc/kafka/secrets)  the broker's key and certificate (kafka-sasl.p12), its
#                                            password (kafka-sasl.p12.pass), the CA (ca.crt); the
#                                            broker alone mounts it
#   kafka-sasl-ca      (/etc/odia/kafka-tls) ca.crt, the CA certificate clients verify the broker
#                                            with (ODIA_KAFKA__SSL_CA_FILE); public
#
# The CA's private key signs the one certificate and is then deleted: nobody can issue another
# certificate for the controller listener (mutual TLS, super user). To renew (825 days), remove
# both volumes and start the profile again; clients pick the new ca.crt up on restart.
set -euo pipefail

SECRETS=${KAFKA_SECRETS_DIR:-/etc/kafka/secrets}
PUBLIC=${KAFKA_CA_DIR:-/etc/odia/kafka-tls}
HOST=${KAFKA_SASL_HOST:-kafka-sasl}
DAYS=825

if [[ -s "$SECRETS/kafka-sasl.p12" && -s "$SECRETS/kafka-sasl.p12.pass" && -s "$SECRETS/ca.crt" && -s "$PUBLIC/ca.crt" ]]; then
  echo "kafka-sasl certificates exist; kept (remove the kafka-sasl-secrets and kafka-sasl-ca volumes to renew)"
  exit 0
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
ca_pass=$(random)
pass=$(random)

# The CA: self-signed, for signing certificates only.
keytool -genkeypair -noprompt -keystore "$work/ca.p12" -storetype PKCS12 -storepass "$ca_pass" \
  -alias ca -dname "CN=odia-stream kafka-sasl CA" -keyalg RSA -keysize 3072 -validity "$DAYS" \
  -ext bc:c=ca:true,pathlen:0 -ext ku:c=keyCertSign,cRLSign
keytool -exportcert -keystore "$work/ca.p12" -storepass "$ca_pass" -alias ca -rfc -file "$work/ca.crt"

# The broker: its key, a request, the CA's signature (names the clients connect to), the chain.
keytool -genkeypair -noprompt -keystore "$work/broker.p12" -storetype PKCS12 -storepass "$pass" \
  -alias "$HOST" -dname "CN=$HOST" -keyalg RSA -keysize 3072 -validity "$DAYS"
keytool -certreq -keystore "$work/broker.p12" -storepass "$pass" -alias "$HOST" -file "$work/broker.csr"
keytool -gencert -keystore "$work/ca.p12" -storepass "$ca_pass" -alias ca -validity "$DAYS" -rfc \
  -infile "$work/broker.csr" -outfile "$work/broker.crt" \
  -ext "san=dns:$HOST,dns:localhost" -ext ku:c=digitalSignature,keyEncipherment -ext eku=serverAuth,clientAuth
keytool -importcert -noprompt -keystore "$work/broker.p12" -storepass "$pass" -alias ca -file "$work/ca.crt"
keytool -importcert -noprompt -keystore "$work/broker.p12" -storepass "$pass" -alias "$HOST" -file "$work/broker.crt"
keytool -delete -keystore "$work/broker.p12" -storepass "$pass" -alias ca

mkdir -p "$SECRETS" "$PUBLIC"
chmod 755 "$PUBLIC"  # the CA certificate is public: every client reads it
cp "$work/broker.p12" "$SECRETS/kafka-sasl.p12"
printf '%s' "$pass" > "$SECRETS/kafka-sasl.p12.pass"
cp "$work/ca.crt" "$SECRETS/ca.crt"
if id appuser >/dev/null 2>&1; then  # the broker runs as the image's appuser
  chown appuser "$SECRETS/kafka-sasl.p12" "$SECRETS/kafka-sasl.p12.pass" "$SECRETS/ca.crt"
fi
chmod 600 "$SECRETS/kafka-sasl.p12" "$SECRETS/kafka-sasl.p12.pass"
chmod 644 "$SECRETS/ca.crt"
# Written last: its presence means everything above is in place.
cp "$work/ca.crt" "$PUBLIC/ca.crt"
chmod 644 "$PUBLIC/ca.crt"
echo "kafka-sasl certificates made: CN=$HOST (DNS $HOST, localhost), valid $DAYS days"

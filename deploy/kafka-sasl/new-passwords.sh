#!/usr/bin/env bash
# Prints a fresh random password for each SCRAM user of the "sasl" profile (the admin and each
# principal of acls.txt), as lines for the .env file beside docker-compose.yml:
#   bash deploy/kafka-sasl/new-passwords.sh >> .env && chmod 600 .env
# Keep .env out of version control. docs/security.md says where each password is used.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/passwords.sh"
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
echo "SASL_ADMIN_PASSWORD=$(random)"
for principal in $(grep -Ev '^[[:space:]]*(#|$)' "$HERE/acls.txt" | awk '{print $1}' | sort -u); do
  echo "$(password_variable "$principal")=$(random)"
done

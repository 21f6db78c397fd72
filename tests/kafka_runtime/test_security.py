"""Kafka security settings mapped into each client library, checked by the libraries themselves:
confluent-kafka clients are constructed with the properties (librdkafka refuses an unknown
property or value, and loads the CA bundle and client certificate at construction), Faust apps
are configured with the credentials and aiokafka clients built from them. The OIDC token
provider runs against a real HTTPS token endpoint."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from cryptography.hazmat.primitives import serialization
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from agents.app import create_app
from kafka_runtime.clients import client_config
from kafka_runtime.security import (
    ClientCredentialsTokenProvider,
    confluent_security,
    faust_credentials,
    kafka_ssl_context,
)
from odia_stream.settings import KafkaSettings, OdiaSettings

SECRET = "planted-secret-Zq81"


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path
    encrypted_key_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    """A throwaway CA, and a client certificate with its key in clear and encrypted with :data:`SECRET`."""
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    client = ca.issue_cert("odia-client@example.test")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(d / "client.pem"))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    (d / "client-encrypted.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(SECRET.encode()),
    ))
    yield Pki(ca, d / "ca.pem", d / "client.pem", d / "client.key", d / "client-encrypted.key")


def _variants(pki: Pki) -> dict[str, KafkaSettings]:
    base = {"bootstrap_servers": "broker.example.test:9093"}
    scram = {"sasl_username": "odia-agents", "sasl_password": SECRET}
    oauth = {"sasl_oauth_token_endpoint": "https://idp.example.test/token", "sasl_oauth_client_id": "odia",
             "sasl_oauth_client_secret": SECRET, "sasl_oauth_scope": "kafka"}
    mtls = {"ssl_ca_file": pki.ca_file, "ssl_cert_file": pki.cert_file, "ssl_key_file": pki.encrypted_key_file,
            "ssl_key_password": SECRET}
    return {
        "plaintext": KafkaSettings(**base),
        "ssl-system-cas": KafkaSettings(**base, security_protocol="SSL"),
        "ssl-mutual": KafkaSettings(**base, security_protocol="SSL", **mtls),
        "sasl-plaintext-plain": KafkaSettings(**base, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", **scram),
        "sasl-ssl-scram-256": KafkaSettings(**base, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
                                            ssl_ca_file=pki.ca_file, **scram),
        "sasl-ssl-scram-512": KafkaSettings(**base, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                                            ssl_ca_file=pki.ca_file, ssl_check_hostname=False, **scram),
        "sasl-ssl-oauthbearer": KafkaSettings(**base, security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER",
                                              ssl_ca_file=pki.ca_file, **oauth),
    }


def test_confluent_properties_are_exact(pki: Pki) -> None:
    v = _variants(pki)
    assert confluent_security(v["plaintext"]) == {"security.protocol": "PLAINTEXT"}
    assert confluent_security(v["ssl-mutual"]) == {
        "security.protocol": "SSL", "ssl.ca.location": str(pki.ca_file),
        "ssl.certificate.location": str(pki.cert_file), "ssl.key.location": str(pki.encrypted_key_file),
        "ssl.key.password": SECRET, "ssl.endpoint.identification.algorithm": "https",
    }
    assert confluent_security(v["sasl-ssl-scram-512"]) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "odia-agents",
        "sasl.password": SECRET, "ssl.ca.location": str(pki.ca_file), "ssl.endpoint.identification.algorithm": "none",
    }
    assert confluent_security(v["sasl-ssl-oauthbearer"]) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.token.endpoint.url": "https://idp.example.test/token",
        "sasl.oauthbearer.client.id": "odia", "sasl.oauthbearer.client.secret": SECRET,
        "sasl.oauthbearer.scope": "kafka", "ssl.ca.location": str(pki.ca_file),
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert client_config(v["sasl-plaintext-plain"])["bootstrap.servers"] == "broker.example.test:9093"


@pytest.mark.parametrize("variant", ["plaintext", "ssl-system-cas", "ssl-mutual", "sasl-plaintext-plain",
                                     "sasl-ssl-scram-256", "sasl-ssl-scram-512", "sasl-ssl-oauthbearer"])
def test_confluent_clients_accept_the_properties(pki: Pki, variant: str) -> None:
    config = client_config(_variants(pki)[variant])
    # librdkafka validates names and values at construction (and reads the CA, certificate and key).
    Producer({**config, "socket.connection.setup.timeout.ms": 1000}).flush(0)
    Consumer({**config, "group.id": "odia-security-test"}).close()
    AdminClient(config)
    if variant == "ssl-mutual":  # the key really is read: without its password it is refused
        wrong = client_config(_variants(pki)[variant].model_copy(update={"ssl_key_password": None}))
        with pytest.raises(KafkaException, match="ssl.key.location failed"):
            Producer(wrong)


@pytest.mark.parametrize("variant, credentials, protocol, mechanism", [
    ("plaintext", type(None), "PLAINTEXT", None),
    ("ssl-mutual", "SSLCredentials", "SSL", None),
    ("sasl-plaintext-plain", "SASLCredentials", "SASL_PLAINTEXT", "PLAIN"),
    ("sasl-ssl-scram-256", "SASLCredentials", "SASL_SSL", "SCRAM-SHA-256"),
    ("sasl-ssl-scram-512", "SASLCredentials", "SASL_SSL", "SCRAM-SHA-512"),
    ("sasl-ssl-oauthbearer", "OAuthCredentials", "SASL_SSL", "OAUTHBEARER"),
])
async def test_faust_apps_and_their_aiokafka_clients_accept_the_credentials(
    tmp_path: Path, pki: Pki, variant: str, credentials: object, protocol: str, mechanism: str | None
) -> None:
    kafka = _variants(pki)[variant]
    app = create_app(OdiaSettings(state_dir=tmp_path, kafka=kafka))
    got = app.conf.broker_credentials
    assert (type(got).__name__ if got is not None else type(None)) == (credentials if isinstance(credentials, str) else type(None))
    auth = credentials_to_aiokafka_auth(got)
    assert auth["security_protocol"] == protocol and auth.get("sasl_mechanism") == mechanism
    # aiokafka checks the combination (protocol, mechanism, context, token provider) at construction.
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, **auth)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id="g", **auth)
    try:  # what they will speak when they connect
        assert producer.client._security_protocol == consumer._client._security_protocol == protocol
    finally:
        await producer.stop()
        await consumer.stop()
    if mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        assert auth["sasl_plain_username"] == "odia-agents" and auth["sasl_plain_password"] == SECRET
        assert SECRET not in repr(got)


def test_the_tls_context_verifies_and_presents_the_client_certificate(pki: Pki) -> None:
    v = _variants(pki)
    ctx = kafka_ssl_context(v["ssl-mutual"])
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    relaxed = kafka_ssl_context(v["sasl-ssl-scram-512"])
    assert relaxed.verify_mode == ssl.CERT_REQUIRED and not relaxed.check_hostname, "only the host-name check is off"
    bad = v["ssl-mutual"].model_copy(update={"ssl_key_password": None})
    with pytest.raises(ValueError, match="could not be loaded") as err:
        kafka_ssl_context(bad)
    assert SECRET not in str(err.value)
    with pytest.raises(ValueError, match="does not exist"):
        kafka_ssl_context(v["ssl-system-cas"].model_copy(update={"ssl_ca_file": pki.ca_file.with_name("none.pem")}))


@pytest.mark.parametrize("given, message", [
    ({"sasl_password": SECRET}, "kafka.sasl_password set but kafka.security_protocol is PLAINTEXT"),
    ({"ssl_ca_file": "ca.pem"}, "kafka.ssl_ca_file set but kafka.security_protocol is PLAINTEXT"),
    ({"security_protocol": "SASL_SSL"}, "kafka.sasl_mechanism is required"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "u"}, "needs kafka.sasl_username and"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "OAUTHBEARER needs"),
    ({"security_protocol": "SSL", "ssl_cert_file": "c.pem"}, "go together"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": SECRET,
      "sasl_oauth_client_id": "x"}, "only for OAUTHBEARER"),
])
def test_inconsistent_settings_are_refused_without_echoing_secrets(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        KafkaSettings(**given)  # type: ignore[arg-type]
    assert SECRET not in str(err.value)


def test_environment_names(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    for name, value in {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-512", "SASL_USERNAME": "odia",
                        "SASL_PASSWORD": SECRET, "SSL_CA_FILE": str(pki.ca_file)}.items():
        monkeypatch.setenv(f"ODIA_KAFKA__{name}", value)
    s = OdiaSettings()
    assert confluent_security(s.kafka)["sasl.password"] == SECRET
    assert SECRET not in repr(s) and SECRET not in s.model_dump_json()
    monkeypatch.setenv("ODIA_KAFKA__SECURITY_PROTOCOL", "PLAINTEXT")
    with pytest.raises(ValidationError) as err:
        OdiaSettings()
    assert SECRET not in str(err.value)


async def test_the_oidc_token_provider_fetches_caches_and_renews(pki: Pki, tmp_path: Path) -> None:
    """A real HTTPS token endpoint (certificate of the test CA): client credentials in HTTP Basic,
    the grant in the form, a token per expiry."""
    server_cert = pki.ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_ctx)
    issued: list[dict[str, str]] = []

    async def token(request: web.Request) -> web.Response:
        form = dict(await request.post())
        if request.headers.get("Authorization") != "Basic " + base64.b64encode(f"odia:{SECRET}".encode()).decode():
            return web.json_response({"error": "invalid_client"}, status=401)
        issued.append({k: str(v) for k, v in form.items()})
        lifetime = 30 if len(issued) == 1 else 3600  # the first expires within the renewal margin
        return web.json_response({"access_token": f"tok-{len(issued)}", "expires_in": lifetime, "token_type": "Bearer"})

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = runner.addresses[0][1]
    try:
        kafka = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", ssl_ca_file=pki.ca_file,
                              sasl_oauth_token_endpoint=f"https://127.0.0.1:{port}/token",
                              sasl_oauth_client_id="odia", sasl_oauth_client_secret=SECRET, sasl_oauth_scope="kafka")
        provider = ClientCredentialsTokenProvider.of(kafka)
        assert await provider.token() == "tok-1"
        assert issued == [{"grant_type": "client_credentials", "scope": "kafka"}]
        assert await provider.token() == "tok-2", "a token is renewed within the 30 s margin of its expiry"
        assert await provider.token() == "tok-2" and len(issued) == 2, "a valid token is cached"
        wrong = ClientCredentialsTokenProvider(kafka.sasl_oauth_token_endpoint or "", "odia", "wrong-secret",
                                               verify=kafka_ssl_context(kafka))
        with pytest.raises(RuntimeError, match="HTTP 401") as err:
            await wrong.token()
        assert "wrong-secret" not in str(err.value) and SECRET not in repr(provider)
        untrusted = ClientCredentialsTokenProvider(kafka.sasl_oauth_token_endpoint or "", "odia", SECRET)
        with pytest.raises(RuntimeError, match="unreachable"):
            await untrusted.token()  # the system's CAs do not know the test CA: verification refuses it
    finally:
        await runner.cleanup()
    assert faust_credentials(kafka).oauth_cb.client_id == "odia"  # type: ignore[union-attr]

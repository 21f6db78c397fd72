"""Kafka security: ``KafkaSettings`` mapped once into each client library's own configuration.

- :func:`confluent_security`: librdkafka properties (``security.protocol``, ``sasl.*``, ``ssl.*``)
  for every confluent-kafka producer, consumer and admin client (:func:`kafka_runtime.clients.client_config`);
- :func:`faust_credentials`: Faust's ``broker_credentials`` (aiokafka underneath the agents):
  ``SSLCredentials``, ``SASLCredentials`` (PLAIN, SCRAM) or ``OAuthCredentials`` with
  :class:`ClientCredentialsTokenProvider` (OIDC client-credentials grant, as librdkafka's
  ``sasl.oauthbearer.method=oidc`` does for the confluent clients).

TLS always verifies the brokers' certificates (the system's CAs, or ``kafka.ssl_ca_file``);
``kafka.ssl_check_hostname`` may only turn off the host-name check. Secrets are read from their
``SecretStr`` here and nowhere else, and none of these functions logs.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, Any

import httpx
from aiokafka.abc import AbstractTokenProvider

from odia_stream.settings import KafkaSettings
from odia_stream.tls import verifying_context

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["ClientCredentialsTokenProvider", "confluent_security", "faust_credentials", "kafka_ssl_context"]

#: A token is fetched again this many seconds before it expires.
TOKEN_REFRESH_MARGIN_S = 30.0


def _secret(value: Any) -> str:
    assert value is not None, "KafkaSettings' validation guarantees it"
    return str(value.get_secret_value())


def confluent_security(kafka: KafkaSettings) -> dict[str, str]:
    """The librdkafka security properties of ``kafka``.

    >>> confluent_security(KafkaSettings())
    {'security.protocol': 'PLAINTEXT'}
    >>> sorted(confluent_security(KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
    ...        sasl_username="u", sasl_password="p")))
    ['sasl.mechanism', 'sasl.password', 'sasl.username', 'security.protocol', 'ssl.endpoint.identification.algorithm']
    """
    props = {"security.protocol": kafka.security_protocol}
    if kafka.uses_sasl:
        assert kafka.sasl_mechanism is not None
        props["sasl.mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_mechanism == "OAUTHBEARER":
            props |= {
                "sasl.oauthbearer.method": "oidc",
                "sasl.oauthbearer.token.endpoint.url": str(kafka.sasl_oauth_token_endpoint),
                "sasl.oauthbearer.client.id": str(kafka.sasl_oauth_client_id),
                "sasl.oauthbearer.client.secret": _secret(kafka.sasl_oauth_client_secret),
            }
            if kafka.sasl_oauth_scope:
                props["sasl.oauthbearer.scope"] = kafka.sasl_oauth_scope
        else:
            props |= {"sasl.username": str(kafka.sasl_username), "sasl.password": _secret(kafka.sasl_password)}
    if kafka.uses_tls:
        if kafka.ssl_ca_file is not None:
            props["ssl.ca.location"] = str(kafka.ssl_ca_file)
        if kafka.ssl_cert_file is not None:
            props["ssl.certificate.location"] = str(kafka.ssl_cert_file)
            props["ssl.key.location"] = str(kafka.ssl_key_file)
        if kafka.ssl_key_password is not None:
            props["ssl.key.password"] = _secret(kafka.ssl_key_password)
        props["ssl.endpoint.identification.algorithm"] = "https" if kafka.ssl_check_hostname else "none"
    return props


def kafka_ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """The TLS context of ``kafka`` for aiokafka: verifies the brokers (``ssl_ca_file`` or the
    system's CAs), presents the client certificate for mutual TLS. Raises ``ValueError`` for a
    file that is missing or unreadable."""
    context = verifying_context(kafka.ssl_ca_file)
    if kafka.ssl_cert_file is not None:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        try:
            context.load_cert_chain(str(kafka.ssl_cert_file), str(kafka.ssl_key_file), password)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"client certificate {kafka.ssl_cert_file} / key {kafka.ssl_key_file} "
                             f"could not be loaded: {type(exc).__name__}") from exc
    context.check_hostname = kafka.ssl_check_hostname
    return context


def faust_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for ``kafka`` (``None``: ``PLAINTEXT``)."""
    import faust

    if kafka.security_protocol == "PLAINTEXT":
        return None
    context = kafka_ssl_context(kafka) if kafka.uses_tls else None
    if kafka.security_protocol == "SSL":
        assert context is not None
        return faust.SSLCredentials(context)
    if kafka.sasl_mechanism == "OAUTHBEARER":
        return faust.OAuthCredentials(oauth_cb=ClientCredentialsTokenProvider.of(kafka), ssl_context=context)
    return faust.SASLCredentials(
        username=kafka.sasl_username, password=_secret(kafka.sasl_password), ssl_context=context,
        mechanism=kafka.sasl_mechanism,
    )


class ClientCredentialsTokenProvider(AbstractTokenProvider):
    """OAUTHBEARER tokens for aiokafka from an OIDC token endpoint (client-credentials grant, the
    client authenticated with HTTP Basic), cached until :data:`TOKEN_REFRESH_MARGIN_S` before they
    expire. The endpoint's certificate is verified (``kafka.ssl_ca_file`` or the system's CAs)."""

    def __init__(
        self, endpoint: str, client_id: str, client_secret: str, *, scope: str | None = None,
        verify: ssl.SSLContext | None = None, timeout_s: float = 10.0,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._verify = verify if verify is not None else verifying_context()
        self.timeout_s = timeout_s
        self._token: tuple[str, float] | None = None
        self._lock: asyncio.Lock | None = None

    @classmethod
    def of(cls, kafka: KafkaSettings) -> ClientCredentialsTokenProvider:
        """The provider ``kafka``'s OAUTHBEARER settings describe."""
        return cls(
            str(kafka.sasl_oauth_token_endpoint), str(kafka.sasl_oauth_client_id),
            _secret(kafka.sasl_oauth_client_secret), scope=kafka.sasl_oauth_scope,
            verify=verifying_context(kafka.ssl_ca_file),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint} client {self.client_id}>"

    async def token(self) -> str:
        """A valid access token (fetched when none is cached or it is about to expire)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is None or time.monotonic() >= self._token[1]:
                self._token = await self._fetch()
            return self._token[0]

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        try:
            async with httpx.AsyncClient(verify=self._verify, timeout=self.timeout_s) as client:
                resp = await client.post(self.endpoint, data=form, auth=(self.client_id, self._client_secret))
        except httpx.HTTPError as exc:
            raise RuntimeError(f"token endpoint {self.endpoint} unreachable: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise RuntimeError(f"token endpoint {self.endpoint} answered HTTP {resp.status_code}")
        try:
            body = resp.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"token endpoint {self.endpoint} answered no access_token") from exc
        return token, time.monotonic() + max(0.0, expires_in - TOKEN_REFRESH_MARGIN_S)

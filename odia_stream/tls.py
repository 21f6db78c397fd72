"""TLS for the HTTP endpoints odia-stream calls (Qdrant server, large model, vLLM server).

Certificates are always verified: with the system's CA bundle by default, or with the bundle a
``ca_file`` setting names (a private CA). There is no switch that turns verification off.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["verifying_context"]


def verifying_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A client context that verifies certificates and host names, trusting ``ca_file`` when given
    (else the system's CAs). Raises ``ValueError`` for a missing or unreadable bundle.

    >>> verifying_context().verify_mode == ssl.CERT_REQUIRED
    True
    """
    if ca_file is not None and not Path(ca_file).is_file():
        raise ValueError(f"CA bundle {ca_file} does not exist")
    try:  # a default context verifies certificates and host names
        return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except ssl.SSLError as exc:
        raise ValueError(f"CA bundle {ca_file} could not be read: {exc}") from exc

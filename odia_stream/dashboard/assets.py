"""The page's static files (HTML, JS, CSS), shipped as package data: no CDN, no build step."""

from __future__ import annotations

from importlib.resources import files

#: Served file name -> content type.
STATIC_FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def read_static(name: str) -> bytes:
    """The bytes of one static file; ``KeyError`` for a name that is not one of ``STATIC_FILES``."""
    if name not in STATIC_FILES:
        raise KeyError(f"no static file {name!r}; have {sorted(STATIC_FILES)}")
    return (files("odia_stream.dashboard") / "static" / name).read_bytes()

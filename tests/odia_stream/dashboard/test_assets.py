"""The page's static files: present, self-contained (no external URL), wired to each other."""

from __future__ import annotations

import re

import pytest

from odia_stream.dashboard import STATIC_FILES, read_static


def test_every_static_file_is_packaged_and_has_no_external_reference() -> None:
    for name in STATIC_FILES:
        text = read_static(name).decode("utf-8")
        assert text.strip(), name
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), f"{name} loads something from outside"
        assert "cdn" not in text.lower(), name
    with pytest.raises(KeyError):
        read_static("../settings.py")


def test_the_script_only_addresses_elements_the_page_has() -> None:
    html = read_static("index.html").decode()
    js = read_static("app.js").decode()
    assert 'src="static/app.js"' in html and 'href="static/style.css"' in html
    ids_in_page = set(re.findall(r'id="([^"]+)"', html))
    used = set(re.findall(r'getElementById\("([^"]+)"\)', js)) | set(re.findall(r'querySelector\("#([\w-]+)', js))
    assert used and used <= ids_in_page, used - ids_in_page
    # Data from the stream is written as text, never parsed as markup.
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js

"""Where EM is: its API base URL, as the settings and the client both need it."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalize_base_url(url: str) -> str:
    """`https://em:9398`, `https://em:9398/api` and `.../api/` all mean the same EM. Returns `.../api`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use em.username and the password file")
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme}://{parts.netloc}{path}/api"

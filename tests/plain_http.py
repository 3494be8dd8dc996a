"""One HTTP client for the tests' plain requests. `httpx.get()` builds a new client, and with it a TLS
context, on every call (~45 ms): across the suite that was minutes. This one keeps no connection and no
cookie between requests, so each request behaves as `httpx.get()`'s would."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

_CLIENT = httpx.Client(
    timeout=5.0,
    limits=httpx.Limits(max_keepalive_connections=0),
    cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
)
get = _CLIENT.get
post = _CLIENT.post
put = _CLIENT.put
delete = _CLIENT.delete
request = _CLIENT.request

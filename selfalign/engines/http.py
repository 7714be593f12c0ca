"""The HTTP side of the OpenAI-compatible engine: one pooled ``httpx`` client, bounded concurrency, retries.

- Retries 429 and 5xx (and dropped connections / timeouts) with exponential back-off, honouring a server's
  ``Retry-After`` (capped at ``MAX_WAIT`` seconds); any other status is one ``ModelError`` naming the endpoint.
- At most ``concurrency`` requests in flight (a thread pool over one connection pool); results keep input order.
- Redirects are followed (at most ``MAX_REDIRECTS``); the ``Authorization`` header is sent only to the host the
  user configured: httpx drops it on a redirect to another origin, and this client refuses to follow one that
  would leave it (the request would arrive without credentials, or at a host the user did not name).
- The API key is read from the environment at each request; it is never stored on the object or logged.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence
from urllib.parse import urlsplit

from selfalign.errors import ModelError

RETRY_CODES = {429, 500, 502, 503, 504}
MAX_WAIT = 60.0
MAX_REDIRECTS = 3


def _origin(url: str) -> tuple:
    u = urlsplit(str(url))
    return u.scheme, u.hostname, u.port or {"http": 80, "https": 443}.get(u.scheme)


class Client:
    def __init__(self, base_url: str, api_key_env: str | None = "OPENAI_API_KEY", timeout: float = 120.0,
                 retries: int = 3, backoff: float = 1.0, concurrency: int = 8):
        import httpx

        if concurrency < 1:
            raise ModelError(f"engine 'openai': concurrency must be at least 1, got {concurrency}")
        self.url, self.api_key_env, self.retries, self.backoff = base_url.rstrip("/"), api_key_env, retries, backoff
        self.concurrency = concurrency
        self.http = httpx.Client(timeout=timeout, follow_redirects=False,
                                 limits=httpx.Limits(max_connections=concurrency,
                                                     max_keepalive_connections=concurrency))

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env or "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def post(self, path: str, body: dict) -> dict:
        import httpx

        url = self.url + path
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2 ** attempt
            try:
                r = self._send(url, body)
                if r.status_code < 300:
                    try:
                        return r.json()
                    except ValueError:
                        raise ModelError(f"{url}: the response is not JSON") from None
                if r.status_code not in RETRY_CODES or attempt == self.retries:
                    raise ModelError(f"{url}: HTTP {r.status_code}: {r.text[:300]}")
                wait = _retry_after(r.headers.get("retry-after"), wait)
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise ModelError(f"{url} unreachable: {type(e).__name__}: {e}") from None
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _send(self, url: str, body: dict):
        r = self.http.post(url, json=body, headers=self._headers())
        for _ in range(MAX_REDIRECTS):  # same-origin redirects only
            if not r.is_redirect or r.next_request is None:
                return r
            nxt = r.next_request  # httpx's: POST kept for 307/308; Authorization dropped for another origin
            if _origin(nxt.url) != _origin(self.url):
                raise ModelError(f"{url}: the server redirects to another host ({nxt.url.host}:{nxt.url.port}); not "
                                 "followed, so that the API key goes only to the server you configured")
            r = self.http.send(nxt)
        if r.is_redirect:
            raise ModelError(f"{url}: more than {MAX_REDIRECTS} redirects")
        return r

    def map(self, fn: Callable, items: Sequence) -> list:
        """``[fn(x) for x in items]`` with at most ``concurrency`` running at once, in input order."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))


def _retry_after(value: str | None, default: float) -> float:
    try:
        return min(MAX_WAIT, max(0.0, float(value))) if value is not None else default
    except ValueError:
        return default

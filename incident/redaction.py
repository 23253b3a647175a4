"""Secrets kept out of what we print: passwords, tokens and webhook keys in URLs."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

# Schemes whose host and path carry no secret, so they can be shown. Most apprise schemes
# (slack, telegram, discord, …) carry their tokens in the host and path.
PLAIN_SCHEMES = frozenset(("http", "https", "file", "json", "jsons", "form", "forms", "xml", "xmls",
                           "mailto", "mailtos"))
SECRET_QUERY_KEYS = re.compile(r"(?i)(token|key|secret|pass|password|auth|apikey|webhook)")


def redact_url(url: str) -> str:
    """`url` safe to print: the password, secret query values, or all but the scheme masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.scheme not in PLAIN_SCHEMES:
        return f"{parts.scheme}://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(
        f"{k}=***" if SECRET_QUERY_KEYS.search(k) else f"{k}={v}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    out = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{out}?{query}" if query else out

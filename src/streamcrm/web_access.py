"""Who may read personal data from a worker's web server (pure; web.py applies it).

``/customers/<id>`` serves one customer's whole state, so it takes a bearer token
(``STREAMCRM_WEB_TOKEN``); a worker started without one serves it to nobody.
"""

from __future__ import annotations

import hmac

TOKEN_ENV = "STREAMCRM_WEB_TOKEN"  # noqa: S105 - the variable's name


def access_refused(token: str | None, authorization: str | None) -> tuple[int, str] | None:
    """(status, reason) if a request with this ``Authorization`` header may not read
    personal data; None if it may. No token configured: the endpoint is off.

    >>> access_refused(None, "Bearer x")[0], access_refused("t0k", None)[0]
    (403, 401)
    >>> access_refused("t0k", "Bearer t0k") is None, access_refused("t0k", "Bearer t0")[0]
    (True, 401)
    """
    if not token:
        return 403, f"/customers is off on this worker: start it with {TOKEN_ENV} set to enable it"
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return 401, "/customers needs the header 'Authorization: Bearer <STREAMCRM_WEB_TOKEN>'"
    return None

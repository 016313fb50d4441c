"""Posting to a Slack-compatible incoming webhook.

The body is what Slack's incoming webhooks take (`text`, shown in the channel) plus the
alert itself under `alert`, for receivers that read fields (Slack ignores it). The README
shows one.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from app.alerts.rules import FIRING, Alert
from app.alerts.topic import alert_json

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0


class Refused(Exception):
    """The receiver answered 4xx (not 408 or 429): the same post would be refused again."""


def payload(alert: Alert) -> dict[str, Any]:
    mark = ":rotating_light:" if alert.state == FIRING else ":white_check_mark:"
    return {"text": f"{mark} {alert.message}", "alert": alert_json(alert)}


def post(
    url: str,
    body: dict[str, Any],
    retries: int,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """POST the body as JSON; retry on failure (waits double, at most a minute).

    Raises Refused at once on a 4xx other than 408/429, and the last error after the last
    retry: the notifier then stops without moving its offset, and systemd starts it again.
    """
    data = json.dumps(body).encode()
    for attempt in range(retries + 1):
        request = urllib.request.Request(
            url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                response.read()
                return
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise Refused(f"the webhook refused the post: HTTP {exc.code}") from None
            error: Exception = exc
        except (urllib.error.URLError, OSError) as exc:
            error = exc
        if attempt == retries:
            raise error
        wait = min(backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS)
        # The URL is a secret: say what failed, never where it was sent.
        log.warning(
            "webhook post failed (attempt %d of %d): %s; retrying in %.0fs",
            attempt + 1,
            retries + 1,
            _reason(error),
            wait,
        )
        sleep(wait)


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return type(error).__name__

"""Webhook deliveries: build, sign, queue, send, record.

GitHub sends an app one POST per event, signed with the app's webhook secret,
from a pool of "Hookshot" workers, and records each attempt (listed by
``GET /app/hook/deliveries``). It does not retry a failed delivery by itself;
the app may ask for a redelivery (same GUID, new delivery id,
``redelivery: true``).

Here one background thread sends the queue in order, so a test sees events in
the order the changes happened. ``drain()`` waits until every queued delivery
has been attempted. Bodies are rendered from the ``x-webhooks`` schema of the
event and action, from values captured when the event happened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx

from .render import unwrap
from .state import App, Delivery, State
from .util import guid, iso

if TYPE_CHECKING:
    from .render import Renderer
    from .spec import Spec

HOOKSHOT_UA = "GitHub-Hookshot/7e3f2c1"

# Events GitHub sends to every app, whatever it subscribed to.
ALWAYS_SENT = {"installation", "installation_repositories", "github_app_authorization", "ping"}


def sign(secret: str, body: bytes) -> tuple[str, str]:
    """(X-Hub-Signature-256, X-Hub-Signature) for ``body``."""
    key = secret.encode()
    return (
        "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
    )


class Dispatcher:
    def __init__(self, state: State, spec: Spec, renderer: Renderer, timeout: float = 10.0):
        self.state = state
        self.spec = spec
        self.renderer = renderer
        self.timeout = timeout
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="github-emulator-hookshot", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------------ building

    def build(
        self,
        app: App,
        event: str,
        action: str | None,
        values: dict[str, Any],
        installation_id: int | None,
        repository_id: int | None,
        delivery_guid: str | None = None,
        redelivery: bool = False,
        raw_body: bytes | None = None,
    ) -> Delivery:
        """Render (unless ``raw_body`` is given), sign and record a delivery."""
        if raw_body is None:
            schema = self.spec.webhook_schema(event, action)
            payload = self.renderer.render(schema, values) if schema is not None else unwrap(values)
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        else:
            body = raw_body
            payload = json.loads(body)
        delivery_guid = delivery_guid or guid()
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": HOOKSHOT_UA,
            "X-GitHub-Delivery": delivery_guid,
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": str(app.hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(app.id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
        }
        if app.webhook_secret:
            sig256, sig1 = sign(app.webhook_secret, body)
            headers["X-Hub-Signature"] = sig1
            headers["X-Hub-Signature-256"] = sig256
        delivery = Delivery(
            id=self.state.next_id("delivery"),
            guid=delivery_guid,
            app=app,
            event=event,
            action=action,
            installation_id=installation_id,
            repository_id=repository_id,
            payload=payload,
            body=body,
            request_headers=headers,
            url=app.webhook_url,
            redelivery=redelivery,
        )
        with self.state.lock:
            self.state.deliveries.append(delivery)
            self.state.deliveries_by_id[delivery.id] = delivery
        return delivery

    def enqueue(self, delivery: Delivery) -> Delivery:
        with self._cond:
            self._pending += 1
        self._queue.put(delivery)
        return delivery

    # ------------------------------------------------------------------ sending

    def drain(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery has been attempted. False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                if self._stopping:
                    # Whatever is still queued is recorded as not sent.
                    while not self._queue.empty():
                        left = self._queue.get_nowait()
                        if left is not None:
                            self._finish(left, 0, "Emulator stopped before delivery", {}, "", 0.0)
                    return
                continue
            try:
                self._send(delivery)
            except Exception as exc:  # never let one delivery kill the sender
                self._finish(delivery, 0, f"Emulator error: {exc}", {}, "", 0.0)

    def _send(self, d: Delivery) -> None:
        url = d.url
        start = time.monotonic()
        if not url:
            self._finish(d, 0, "No webhook URL configured", {}, "", 0.0)
            return
        client = self._client
        if client is None:  # stopped: the client is closed before the queue drains
            self._finish(d, 0, "Emulator stopped before delivery", {}, "", 0.0)
            return
        try:
            response = client.post(url, content=d.body, headers=d.request_headers)
        except httpx.TimeoutException:
            self._finish(d, 0, "timed out", {}, "", time.monotonic() - start)
            return
        except httpx.HTTPError as exc:
            self._finish(d, 0, f"failed to connect to host ({type(exc).__name__})", {}, "", time.monotonic() - start)
            return
        status = "OK" if 200 <= response.status_code < 300 else f"Invalid HTTP Response: {response.status_code}"
        self._finish(
            d, response.status_code, status, dict(response.headers), response.text[:10_000], time.monotonic() - start
        )

    def _finish(self, d: Delivery, code: int, status: str, headers: dict, body: str, duration: float) -> None:
        with self.state.lock:
            d.status_code = code
            d.status = status
            d.response_headers = headers
            d.response_body = body
            d.duration = round(duration, 3)
            d.delivered_at = iso()
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

"""A webhook receiver for the submission benchmark: accepts every POST with 204, as fast as a
raw ASGI app can, and counts what it received (GET /count). Run with uvicorn (bench/run does).

The benchmark subscribes an endpoint here and runs the worker, so deliveries cost what they cost
in a deployment: the worker's CPU, its database reads and writes, and this peer's answers.
"""

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

received = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global received
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        body = str(received).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    received += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

"""Request body size limit, enforced while the body streams in.

Checking `Content-Length` alone would let a chunked upload of any size through; counting the
bytes as they arrive stops it at the limit without buffering more. (FastAPI's own
`max_body_size` answers a declared oversize body in plain text; integrators get problem+json.)
"""

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await _reject(scope, send, self.max_bytes)
                    return
        seen = 0
        limit = self.max_bytes

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI lets HTTPException through its body parsing untouched, so this
                    # reaches the problem+json handler as a 413.
                    raise HTTPException(413, f"request body larger than {limit} bytes")
            return message

        await self.app(scope, counted_receive, send)


async def _reject(scope: Scope, send: Send, limit: int) -> None:
    import json

    from services.fhir.codes import MEDIA_TYPE as FHIR_MEDIA_TYPE
    from services.fhir.outcome import operation_outcome

    detail = f"request body larger than {limit} bytes"
    path = str(scope.get("path", ""))
    if path == "/fhir" or path.startswith("/fhir/"):
        content: dict[str, object] = operation_outcome(413, detail)
        media_type = FHIR_MEDIA_TYPE
    else:
        content = {
            "type": "urn:attune:problem:content-too-large",
            "title": "Content too large",
            "status": 413,
            "detail": detail,
            "instance": scope.get("path"),
        }
        media_type = "application/problem+json"
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

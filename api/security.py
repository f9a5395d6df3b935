"""Response headers every answer carries, and CORS (off unless origins are configured).

API answers are JSON that may hold health data: never sniffed as another type, never framed,
never cached, never sent as a referrer, and under a Content-Security-Policy that lets a browser
run or load nothing from them. The HTML documentation pages (`/docs`, `/redoc`) load Swagger UI
and ReDoc (scripts, styles, a web worker) from a CDN, so they are left without a CSP rather than
broken; they hold no data.
"""

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from services.kernel.config import Settings

BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
API_HEADERS = (
    *BASE_HEADERS,
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
HTML_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
# The rating page (api/routes/rating_page.py) runs our own script and style sheet and talks to
# this same origin; nothing inline, nothing from another host (DESIGN.md §10.4).
RATING_PAGE_PREFIX = "/r/"
RATING_PAGE_HEADERS = (
    *BASE_HEADERS,
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        b"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
)


def headers_for(path: str) -> tuple[tuple[bytes, bytes], ...]:
    if path.startswith(RATING_PAGE_PREFIX):
        return RATING_PAGE_HEADERS
    return BASE_HEADERS if path in HTML_PAGES else API_HEADERS


# What a browser client may send and read across origins (when CORS is on).
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
CORS_EXPOSED_HEADERS = ("Retry-After", "Idempotent-Replayed", "Allow", "X-Request-ID")


def install_cors(app: FastAPI, settings: Settings) -> None:
    """CORS only for the origins in `ATTUNE_CORS_ORIGINS`; without any, no CORS header is ever
    sent and browsers keep other sites' scripts away from the API. Keys travel in the
    `Authorization` header, never in cookies, so credentials mode stays off."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=600,
    )

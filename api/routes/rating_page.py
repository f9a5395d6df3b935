"""The rating page (DESIGN.md §10.4): what a client opens from the link of an invitation.

One HTML page, its style sheet and its script, all served from here (no framework, no other
host), under a Content-Security-Policy that runs only our own script (`api/security.py`). The page
reads the token from the link's fragment, which never reaches a server, and talks to the
`/v1/invitation` routes with it. The language is the one asked for with `?lang=`, else the best
match of `Accept-Language`, else English; the script holds the wording of both.
"""

from importlib.resources import files
from string import Template

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.care.invitations import RATING_PAGE_PATH

router = APIRouter(include_in_schema=False)

_FILES = files("api").joinpath("rating_page")
_PAGE = Template(_FILES.joinpath("index.html").read_text(encoding="utf-8"))
_SCRIPT = _FILES.joinpath("rating.js").read_bytes()
_STYLE = _FILES.joinpath("rating.css").read_bytes()
_ICON = _FILES.joinpath("icon.svg").read_bytes()

LANGUAGES = ("en", "es")
# What the page says before its script has run (or when scripts are off).
_BEFORE_SCRIPT = {
    "en": {
        "title": "Rate your session",
        "loading": "Loading…",
        "noscript": "This page needs JavaScript to send your answers. Please turn it on, or ask "
        "your clinic for another way to rate your session.",
    },
    "es": {
        "title": "Valora tu sesión",
        "loading": "Cargando…",
        "noscript": "Esta página necesita JavaScript para enviar tus respuestas. Actívalo o pide "
        "a tu clínica otra forma de valorar tu sesión.",
    },
}


def choose_language(asked: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it names a language we have (``es``, ``es-MX``), else the first match of
    ``Accept-Language`` by quality, else English."""
    if asked:
        primary = asked.split("-")[0].strip().lower()
        if primary in LANGUAGES:
            return primary
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.split("-")[0].strip().lower()
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else "en"


@router.get("/r")
async def rating_page_slash(request: Request) -> RedirectResponse:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(RATING_PAGE_PATH + query, status_code=308)


@router.get(RATING_PAGE_PATH)
async def rating_page(request: Request, lang: str | None = None) -> HTMLResponse:
    chosen = choose_language(lang, request.headers.get("accept-language"))
    html = _PAGE.substitute(lang=chosen, **_BEFORE_SCRIPT[chosen])
    return HTMLResponse(html, headers={"Content-Language": chosen, "Vary": "Accept-Language"})


@router.get(RATING_PAGE_PATH + "rating.js")
async def rating_script() -> Response:
    return Response(_SCRIPT, media_type="text/javascript; charset=utf-8")


@router.get(RATING_PAGE_PATH + "rating.css")
async def rating_style() -> Response:
    return Response(_STYLE, media_type="text/css; charset=utf-8")


@router.get(RATING_PAGE_PATH + "icon.svg")
async def rating_icon() -> Response:
    return Response(_ICON, media_type="image/svg+xml")

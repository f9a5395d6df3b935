"""A client rates a session on the rating page (`/r/`), on a phone, by touch or by keyboard
alone (DESIGN.md §10.4, issue 15 acceptance). Each test checks what is stored through the API,
and axe-core checks every state the page shows against WCAG 2.1 AA."""

from typing import Any

import pytest

from tests.browser.conftest import (
    Clinic,
    LiveServer,
    assert_accessible,
    expire,
    screenshot,
)
from tests.support import bearer, expect, srs

ORS = ("individually", "interpersonally", "socially", "overall")
SRS = ("relationship", "goals_topics", "approach_method", "overall")


def open_link(page: Any, url: str, state: str) -> list[str]:
    """Open the link and wait for the page to show ``state``; returns the console's errors
    (a script or style the CSP refused would show there)."""
    errors: list[str] = []

    def console(message: Any) -> None:
        # A failed request (a 401, a 410, a lost connection) is logged too: that is the page's
        # business. Anything else, such as a script or style the CSP refused, is an error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector(f"body[data-state={state}]")
    return errors


def stored_answers(clinic: Clinic, episode_id: str) -> dict[str, dict[str, Any]]:
    found = clinic.submissions(episode_id)
    assert len(found) == len({s["instrument"] for s in found}), "an instrument stored twice"
    return {s["instrument"]: s["answers"] for s in found}


def test_a_client_rates_by_keyboard_alone_and_the_answers_are_stored_exactly(
    phone: Any, clinic: Clinic
) -> None:
    episode = clinic.episode()
    created = clinic.invite(episode, "ors", "srs", "rupture-check", session_number=3)
    errors = open_link(phone, created["url"], "form")
    assert phone.locator("h1").inner_text() == "Rate your session"
    assert phone.get_by_text("Session 3").is_visible()
    # The rupture check's follow-up questions apply only once tension is reported.
    assert phone.get_by_label("How strong was it?", exact=False).count() == 0 or not (
        phone.locator("#q-rupture-check-intensity").is_visible()
    )
    assert_accessible(phone, "form")

    # Sending with nothing answered: nothing is sent, and every question is listed.
    phone.keyboard.press("Tab")  # the first slider
    focused = phone.evaluate("document.activeElement.id")
    assert focused == "ors-individually"
    phone.locator("button.primary").focus()
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#missing:not([hidden])")
    assert phone.locator("#missing li").count() == 9  # 4 + 4 + tension
    assert_accessible(phone, "missing-answers")
    assert clinic.submissions(episode) == []

    # Arrows step 0.1, Page Up/Down 1, Home/End the ends; nothing counts until moved.
    keys = {
        "ors-individually": ["ArrowRight"] * 3,  # 5.0 → 5.3
        "ors-interpersonally": ["PageUp", "PageUp"],  # 7.0
        "ors-socially": ["End", "PageDown"],  # 9.0
        "ors-overall": ["Home", "ArrowRight", "ArrowUp"],  # 0.2
        "srs-relationship": ["End"],  # 10.0
        "srs-goals_topics": ["PageDown", "ArrowLeft"],  # 3.9
        "srs-approach_method": ["PageUp", "PageUp", "PageUp", "ArrowLeft"],  # 7.9
        "srs-overall": ["ArrowLeft"],  # 4.9
    }
    for control, presses in keys.items():
        phone.locator(f"#{control}").focus()
        for key in presses:
            phone.keyboard.press(key)
    # The rupture check: Yes, then the two follow-ups appear; Space picks, arrows move.
    phone.locator("#rupture-check-tension-0").focus()
    phone.keyboard.press("ArrowRight")  # Yes
    phone.keyboard.press("Tab")  # into "how strong"
    phone.keyboard.press("Space")  # 1
    phone.keyboard.press("ArrowRight")
    phone.keyboard.press("ArrowRight")  # 3
    phone.keyboard.press("Tab")  # into "how far resolved"
    phone.keyboard.press("Space")  # 1
    phone.keyboard.press("ArrowRight")  # 2
    assert phone.locator("#ors-individually").get_attribute("aria-valuetext") == "5.3"
    assert_accessible(phone, "form-answered")
    phone.keyboard.press("Tab")  # the send button
    assert phone.evaluate("document.activeElement.className") == "primary"
    phone.keyboard.press("Enter")
    phone.wait_for_selector("body[data-state=receipt]")
    assert "Thank you" in phone.locator("h1").inner_text()
    assert phone.locator(".receipt li").count() == 3
    assert_accessible(phone, "receipt")

    assert stored_answers(clinic, episode) == {
        "ors": {"individually": 5.3, "interpersonally": 7.0, "socially": 9.0, "overall": 0.2},
        "srs": {
            "relationship": 10.0,
            "goals_topics": 3.9,
            "approach_method": 7.9,
            "overall": 4.9,
        },
        "rupture-check": {"tension": 1, "intensity": 3, "resolution": 2},
    }
    assert errors == []


def test_a_client_rates_by_touch_and_a_lost_answer_is_retried_without_a_duplicate(
    phone: Any, clinic: Clinic
) -> None:
    episode = clinic.episode()
    created = clinic.invite(episode, "srs", "ors", "rupture-check")
    attempts: list[str] = []

    def lose_the_first_answer(route: Any) -> None:
        attempts.append(route.request.headers["idempotency-key"])
        if len(attempts) == 1:
            route.fetch()  # the server stores it ...
            route.abort("connectionreset")  # ... but its answer never arrives
        else:
            route.continue_()

    phone.route("**/v1/invitation/submissions", lose_the_first_answer)
    errors = open_link(phone, created["url"], "form")

    shown: dict[str, dict[str, float]] = {"srs": {}, "ors": {}}
    fractions = (0.15, 0.42, 0.78, 0.93)
    for code, items in (("srs", SRS), ("ors", ORS)):
        for item, fraction in zip(items, fractions, strict=True):
            slider = phone.locator(f"#{code}-{item}")
            slider.scroll_into_view_if_needed()
            box = slider.bounding_box()
            slider.tap(position={"x": box["width"] * fraction, "y": box["height"] / 2})
            text = slider.get_attribute("aria-valuetext")
            assert text != "Not answered yet", f"{code}.{item}: the tap did not answer"
            shown[code][item] = float(text)
            assert phone.locator(f"output[for={code}-{item}]").inner_text() == text
    phone.locator("label[for=rupture-check-tension-0]").tap()  # No
    assert not phone.locator("#q-rupture-check-intensity").is_visible()
    phone.locator("button.primary").tap()
    phone.wait_for_selector("body[data-state=receipt]", timeout=15_000)

    assert len(attempts) == 4  # one lost, then retried with the same key; then the others
    assert attempts[0] == attempts[1]
    assert len(set(attempts)) == 3
    assert stored_answers(clinic, episode) == {
        "srs": shown["srs"],
        "ors": shown["ors"],
        "rupture-check": {"tension": 0},
    }
    # Each line spread the taps out: a tap left of another reads lower.
    for code in ("srs", "ors"):
        values = list(shown[code].values())
        assert values == sorted(values)
        assert values[0] < 3
        assert values[-1] > 8
    assert errors == []


def test_expired_revoked_used_and_broken_links_show_their_own_pages(
    phone: Any, clinic: Clinic, live_server: LiveServer
) -> None:
    episode = clinic.episode()
    expired, revoked, used = (clinic.invite(episode, "srs") for _ in range(3))
    expire(live_server.database_url, expired["id"])
    expect(clinic.http.delete(f"/v1/invitations/{revoked['id']}", headers=clinic.admin), 204)
    expect(
        clinic.http.post(
            "/v1/invitation/submissions",
            json={"instrument": "srs", "answers": srs(9, 9, 9, 9)},
            headers=bearer(used["token"]),
        ),
        201,
    )
    cases = (
        (expired["url"], "expired", "This link has expired"),
        (revoked["url"], "revoked", "This link is no longer valid"),
        (used["url"], "used", "Your answers were already sent"),
        (f"{live_server.url}/r/#inv_not-a-real-token", "invalid", "This link does not work"),
        (f"{live_server.url}/r/", "invalid", "This link does not work"),
    )
    for url, state, title in cases:
        errors = open_link(phone, url, state)
        assert phone.locator("h1").inner_text() == title
        assert phone.evaluate("document.activeElement.tagName") == "H1"
        assert_accessible(phone, f"link-{state}")
        assert errors == []
    # Nothing was stored by opening them.
    assert len(clinic.submissions(episode)) == 1


def test_an_unreachable_or_busy_server_gets_a_page_with_a_way_to_try_again(
    phone: Any, clinic: Clinic
) -> None:
    episode = clinic.episode()
    created = clinic.invite(episode, "srs")
    phone.route("**/v1/invitation", lambda route: route.abort("internetdisconnected"))
    open_link(phone, created["url"], "offline")
    assert phone.locator("h1").inner_text() == "We cannot reach the clinic's server"
    assert_accessible(phone, "link-offline")
    phone.unroute("**/v1/invitation")
    phone.route(
        "**/v1/invitation",
        lambda route: route.fulfill(
            status=429,
            content_type="application/problem+json",
            body='{"type": "urn:attune:problem:too-many-requests", "status": 429}',
        ),
    )
    phone.get_by_role("button", name="Try again").tap()
    phone.wait_for_selector("body[data-state=busy]")
    assert_accessible(phone, "link-busy")
    phone.unroute("**/v1/invitation")
    phone.get_by_role("button", name="Try again").tap()
    phone.wait_for_selector("body[data-state=form]")


def test_a_client_raises_a_concern_and_is_told_who_reads_it(phone: Any, clinic: Clinic) -> None:
    episode = clinic.episode()
    created = clinic.invite(episode, "srs")
    open_link(phone, created["url"], "form")
    phone.locator("details.concern summary").tap()
    assert phone.get_by_text("not to your therapist", exact=False).is_visible()
    phone.locator("details.concern button").tap()
    assert phone.locator("#concern-error").is_visible()
    assert_accessible(phone, "concern-empty")
    phone.locator("#concern-category").select_option("relationship")
    phone.locator("#concern-message").fill("I felt rushed today.")
    phone.locator("details.concern button").tap()
    phone.wait_for_selector(".concern .outcome:not([hidden])")
    assert "was sent" in phone.locator(".concern .outcome").inner_text()
    assert_accessible(phone, "concern-sent")
    alerts = expect(clinic.http.get(f"/v1/alerts?episode_id={episode}", headers=clinic.admin), 200)[
        "items"
    ]
    assert [a["type"] for a in alerts] == ["concern.reported"]


def test_the_page_speaks_spanish_and_shows_the_organisations_own_wording(
    browser: Any, clinic: Clinic
) -> None:
    own = {
        "code": "srs-licensed",
        "version": "1",
        "name": "Session rating (licensed wording)",
        "kind": "alliance",
        "respondents": ["client"],
        "items": [
            {
                "id": "heard",
                "label": "Heard",
                "min": 0,
                "max": 10,
                "step": 0.1,
                "display": {
                    "en": {"text": "I felt heard", "min_label": "not", "max_label": "fully"},
                    "es": {
                        "text": "Me sentí escuchado",
                        "min_label": "nada",
                        "max_label": "del todo",
                    },
                },
            }
        ],
        "subscales": {},
        "direction": "higher_is_better",
        "citation": "test",
        "license": "test",
    }
    expect(clinic.http.post("/v1/instruments", json=own, headers=clinic.admin), 201)
    episode = clinic.episode()
    created = clinic.invite(episode, "srs-licensed", "srs", "rupture-check")
    context = browser.new_context(
        viewport={"width": 320, "height": 640},
        has_touch=True,
        is_mobile=True,
        locale="es-ES",
        extra_http_headers={"Accept-Language": "es-ES,es;q=0.9"},
    )
    try:
        page = context.new_page()
        open_link(page, created["url"], "form")
        assert page.locator("html").get_attribute("lang") == "es"
        assert page.locator("h1").inner_text() == "Valora tu sesión"
        assert page.locator("label[for=srs-licensed-heard]").inner_text() == "Me sentí escuchado"
        assert page.locator("label[for=srs-relationship]").inner_text() == "Relación"
        # Usable at 320 px: nothing wider than the screen, every target at least 44 px.
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        page.locator("details.concern summary").tap()
        page.locator("label[for=rupture-check-tension-1]").tap()  # Sí
        targets = page.locator("input[type=range], label.option, button, summary, select, textarea")
        for n in range(targets.count()):
            target = targets.nth(n)
            if not target.is_visible():
                continue
            box = target.bounding_box()
            html = target.evaluate("e => e.outerHTML")
            assert box["height"] >= 44, html
            assert box["width"] >= 44, html
        assert_accessible(page, "form-es-320px")
        # ?lang= wins over Accept-Language.
        page.goto(created["url"].replace("/r/#", "/r/?lang=en#"))
        page.wait_for_selector("body[data-state=form]")
        assert page.locator("label[for=srs-licensed-heard]").inner_text() == "I felt heard"
        screenshot(page, "form-en-320px")
    finally:
        context.close()


@pytest.fixture(autouse=True)
def _no_shared_rows(live_server: LiveServer) -> None:
    """Every test makes its own organisation (tests never share rows)."""


def test_a_refused_answer_is_shown_at_its_question_and_what_was_stored_is_not_sent_again(
    phone: Any, clinic: Clinic
) -> None:
    episode = clinic.episode()
    created = clinic.invite(episode, "rupture-check", "srs")
    posted: list[str] = []
    refusal = (
        '{"type": "urn:attune:problem:validation-error", "status": 422, "detail": "bad answer",'
        ' "errors": [{"field": "body.answers.overall", "message": "not on the grid",'
        ' "type": "value_error"}]}'
    )

    def refuse_srs_once(route: Any) -> None:
        instrument = route.request.post_data_json["instrument"]
        posted.append(instrument)
        if instrument == "srs" and posted.count("srs") == 1:
            route.fulfill(status=422, content_type="application/problem+json", body=refusal)
        else:
            route.continue_()

    phone.route("**/v1/invitation/submissions", refuse_srs_once)
    open_link(phone, created["url"], "form")
    phone.locator("label[for=rupture-check-tension-0]").tap()
    for item in SRS:
        phone.locator(f"#srs-{item}").focus()
        phone.keyboard.press("End")
    phone.locator("button.primary").tap()
    phone.wait_for_selector("#srs-overall-error:not([hidden])")
    assert "not on the grid" in phone.locator("#srs-overall-error").inner_text()
    assert phone.locator("#missing h2").inner_text() == "Some answers need another look"
    assert phone.locator("#srs-overall").get_attribute("aria-invalid") == "true"
    assert phone.locator("#rupture-check-tension-0").is_disabled()
    assert phone.locator("#h-rupture-check + .sent").is_visible()
    assert_accessible(phone, "answer-refused")
    phone.locator("#srs-overall").focus()
    phone.keyboard.press("ArrowLeft")
    phone.locator("button.primary").tap()
    phone.wait_for_selector("body[data-state=receipt]")
    assert posted == ["rupture-check", "srs", "srs"]
    assert stored_answers(clinic, episode) == {
        "rupture-check": {"tension": 0},
        "srs": {
            "relationship": 10.0,
            "goals_topics": 10.0,
            "approach_method": 10.0,
            "overall": 9.9,
        },
    }

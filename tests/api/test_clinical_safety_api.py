"""Issue 13, the settings part, over HTTP: risk items always asked (finding 3) and norms per
respondent (finding 8). Each test reproduces the finding as reported."""

import copy

from services.instruments import get_builtin
from tests.support import Attune, expect, items, ors, submit
from tests.support.alerts import error_fields


async def test_a_phq9_clone_that_could_prorate_item_9_is_refused(attune: Attune) -> None:
    """Finding 3: a clone with ``max_missing_prorated: 2`` accepted a blank q9."""
    tenant = await attune.tenant()
    clone = copy.deepcopy(get_builtin("phq-9").model_dump(mode="json", exclude_none=True))
    clone.update(code="phq-9-local", scoring={"method": "sum", "max_missing_prorated": 2})
    response = await attune.http.post("/v1/instruments", json=clone, headers=tenant.admin)
    refused = expect(response, 422)
    assert "body.scoring.max_missing_prorated" in error_fields(refused)


async def test_a_phq9_without_item_9_is_refused_naming_it(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    answers = items("q", 0, 0, 0, 0, 0, 0, 0, 0)
    refused = await submit(tenant, eid, "phq-9", 1, answers, status=422)
    assert error_fields(refused) == {"body.answers.q9"}


async def test_a_collateral_ors_is_not_clinical_on_the_childs_self_report_cutoff(
    attune: Attune,
) -> None:
    """Finding 8: a mother's ORS of 30 for a child was "clinical" against the child self-report
    cut-off of 32. Without collateral norms its flags are null and outcome rules stay quiet."""
    tenant = await attune.tenant()
    child = await tenant.client(population="child")
    eid = (await tenant.episode(client_id=child["id"]))["id"]
    own = await submit(tenant, eid, "ors", 1, ors(7.5, 7.5, 7.5, 7.5))
    assert (own["scores"]["total"], own["scores"]["clinical"]) == (30.0, True)
    mother = await submit(
        tenant, eid, "ors", 1, ors(7.5, 7.5, 7.5, 7.5), respondent="collateral", rater="mother"
    )
    assert (mother["scores"]["clinical"], mother["scores"]["below_cutoff"]) == (None, None)
    worse = await submit(
        tenant, eid, "ors", 2, ors(2, 2, 2, 2), respondent="collateral", rater="mother"
    )
    assert worse["alerts"] == []  # no collateral reliable change: no deterioration alert
    trajectory = expect(
        await attune.http.get(
            f"/v1/episodes/{eid}/trajectory",
            params={"instrument": "ors", "respondent": "collateral", "rater": "mother"},
            headers=tenant.admin,
        ),
        200,
    )
    assert [p["clinical"] for p in trajectory["points"]] == [None, None]
    assert trajectory["summary"]["classification"] is None

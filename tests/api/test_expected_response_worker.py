"""Expected-response fits of large organisations run in the worker and report progress
(DESIGN.md §10.5, issue 16): here every fit counts as large (ATTUNE_ETR_FIT_INLINE_MAX_EPISODES
= 0), and the test runs the worker's step itself."""

import pytest
from fastapi import FastAPI

from services.kernel.config import Settings
from services.trajectory import fit_worker
from tests.api.test_expected_response_api import closed_episodes
from tests.support import Attune, expect


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"etr_fit_inline_max_episodes": 0})


async def test_a_large_fit_is_queued_run_by_the_worker_and_reports_progress(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    engine = app.state.engine
    await closed_episodes(tenant, [[15, 12, 10]])
    headers = {**tenant.admin, "Idempotency-Key": "fit-1"}
    queued = expect(await attune.http.post("/v1/instruments/phq-9/etr/fit", headers=headers), 202)
    assert (queued["status"], queued["progress"], queued["instrument"]) == ("queued", 0.0, "phq-9")
    again = await attune.http.post("/v1/instruments/phq-9/etr/fit", headers=headers)
    assert (again.status_code, again.json()) == (202, queued)  # a replay, not a second job
    job_url = f"/v1/instruments/phq-9/etr/fits/{queued['id']}"
    other = await attune.tenant("Other")
    expect(await attune.http.get(job_url, headers=other.admin), 404)

    # One closed episode: the worker's fit fails, saying how many are needed.
    assert await fit_worker.run_one(engine) is True
    failed = expect(await attune.http.get(job_url, headers=tenant.admin), 200)
    assert (failed["status"], failed["stage"]) == ("failed", "failed")
    assert "at least 30" in failed["error"]
    assert await fit_worker.run_one(engine) is False  # nothing left to do

    await closed_episodes(tenant, [[12 + i % 9, 10 + i % 7, 8 + i % 5] for i in range(29)])
    second = expect(
        await attune.http.post("/v1/instruments/phq-9/etr/fit", headers=tenant.admin), 202
    )
    assert await fit_worker.run_one(engine) is True
    done = expect(
        await attune.http.get(
            f"/v1/instruments/phq-9/etr/fits/{second['id']}", headers=tenant.admin
        ),
        200,
    )
    assert (done["status"], done["stage"], done["progress"], done["error"]) == (
        "done",
        "done",
        1.0,
        None,
    )
    model = expect(await attune.http.get("/v1/instruments/phq-9/etr", headers=tenant.admin), 200)
    assert (model["source"], model["n_episodes"]) == ("fitted", 30)

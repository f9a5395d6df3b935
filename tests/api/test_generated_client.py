"""Acceptance (issue 17): a client generated with openapi-python-client from the OpenAPI document
the service serves over real HTTP, into a temporary directory, imported and driven through the
clinical flow: organisation and key, clinician, client, episode, an SRS submission below the
cut-off, its alert, the trajectory, an invitation's view, and a Parquet export read with pyarrow.
Its modules, methods and enums carry the names an integrator would write.

The generator runs offline (no post-hooks, which would call ruff); its one setting is
`content_type_overrides`, which tells it that Parquet is binary: it decodes only media types it
knows, and `application/vnd.apache.parquet` is not one of them."""

import importlib
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.support import SYSTEM_KEY, srs

PACKAGE = "attune_generated_client"
CONFIG = f"""\
package_name_override: {PACKAGE}
post_hooks: []
content_type_overrides:
  application/vnd.apache.parquet: application/octet-stream
"""


@pytest.fixture
def generated(served: str, tmp_path: Path) -> Iterator[ModuleType]:
    """The generated package, imported; removed from the import system afterwards."""
    document = httpx.get(f"{served}/openapi.json", timeout=30)
    assert document.status_code == 200
    (tmp_path / "openapi.json").write_bytes(document.content)
    (tmp_path / "config.yaml").write_text(CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    run = subprocess.run(  # noqa: S603  (our own venv's executable, fixed arguments)
        [
            str(generator),
            "generate",
            "--path",
            str(tmp_path / "openapi.json"),
            "--config",
            str(tmp_path / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # The generator names what it could not model; a clean document leaves nothing to warn of.
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture
def connections() -> Iterator[ExitStack]:
    """Closes the generated clients (each holds an httpx connection pool) when the test ends."""
    with ExitStack() as stack:
        yield stack


def test_a_generated_client_runs_the_clinical_flow_under_natural_names(
    generated: ModuleType, served: str, connections: ExitStack
) -> None:
    # Operations read as the API's verbs, grouped by tag; enums are named for what they hold.
    for tag, methods in {
        "submissions": ("create_submission", "get_trajectory", "void_submission"),
        "alerts": ("list_alerts", "acknowledge_alert", "resolve_alert"),
        "exports": ("export_dataset", "get_export_run"),
    }.items():
        for method in methods:
            assert callable(_module(f"api.{tag}.{method}").sync), (tag, method)
    models = _module("models")
    classes = [getattr(models, name) for name in dir(models)]
    enums = {c.__name__ for c in classes if isinstance(c, type) and issubclass(c, Enum)}
    assert {"AlertType", "AlertStatus", "AlertSeverity", "Respondent", "ExportFormat"} <= enums
    # No enum named after a field, an operation or a position in a union.
    assert not [name for name in enums if name[-1].isdigit() or "Get" in name or "V1" in name]
    assert generated.__file__ is not None
    named_by_position = sorted(
        path.stem
        for path in Path(generated.__file__).parent.glob("models/*.py")
        if re.search(r"_type_\d", path.stem)
    )
    assert not named_by_position

    client_module = _module("client")

    def connect(token: str) -> Any:
        return connections.enter_context(
            client_module.AuthenticatedClient(base_url=served, token=token, timeout=30)
        )

    system = connect(SYSTEM_KEY)
    org = _module("api.organizations.create_organization").sync(
        client=system, body=models.OrganizationCreate(name="Generated", slug="generated-client")
    )
    assert isinstance(org, models.OrganizationPublic), org
    key = _module("api.organizations.create_org_api_key").sync(
        org.id,
        client=system,
        body=models.ApiKeyCreate(name="integration", scopes=[models.Scope.ADMIN]),
    )
    assert isinstance(key, models.ApiKeyCreated), key
    admin = connect(key.key)

    clinician = _module("api.clinicians.create_clinician").sync(
        client=admin, body=models.ClinicianCreate(display_name="Dr. Ruiz", external_id="P-17")
    )
    assert isinstance(clinician, models.ClinicianPublic), clinician
    person = _module("api.clients.create_client").sync(
        client=admin,
        body=models.ClientCreate(external_id="C-1042", population=models.Population.ADULT),
    )
    assert isinstance(person, models.ClientPublic), person
    episode = _module("api.episodes.create_episode").sync(
        client=admin, body=models.EpisodeCreate(client_id=person.id, clinician_id=clinician.id)
    )
    assert isinstance(episode, models.EpisodePublic), episode
    assert episode.status is models.EpisodeStatus.ACTIVE

    submission = _module("api.submissions.create_submission").sync(
        client=admin,
        body=models.SubmissionCreate(
            episode_id=episode.id,
            instrument="srs",
            session_number=1,
            respondent=models.Respondent.CLIENT,
            answers=models.SubmissionCreateAnswers.from_dict(srs(9.1, 8.4, 9.0, 8.8)),
        ),
    )
    assert isinstance(submission, models.SubmissionPublic), submission
    assert submission.scores.total == pytest.approx(35.3)
    assert [(a.type_, a.change) for a in submission.alerts] == [
        (models.AlertType.ALLIANCE_LOW, models.AlertChange.CREATED)
    ]

    page = _module("api.alerts.list_alerts").sync(
        client=admin, status=models.AlertStatus.OPEN, type_=models.AlertType.ALLIANCE_LOW
    )
    assert isinstance(page, models.PageAlertPublic), page
    assert [a.id for a in page.items] == [submission.alerts[0].id]
    assert page.items[0].severity is models.AlertSeverity.WARNING

    trajectory = _module("api.submissions.get_trajectory").sync(
        episode.id, client=admin, instrument="srs"
    )
    assert isinstance(trajectory, models.Trajectory), trajectory
    assert [(p.session_number, p.total) for p in trajectory.points] == [(1, pytest.approx(35.3))]

    invitation = _module("api.invitations.create_invitation").sync(
        episode.id,
        client=admin,
        body=models.InvitationCreate(instruments=["srs"], session_number=2),
    )
    assert isinstance(invitation, models.InvitationCreated), invitation
    holder = connect(invitation.token)
    view = _module("api.invitations.get_invitation").sync(client=holder)
    assert isinstance(view, models.InvitationView), view
    assert [type(d).__name__ for d in view.instruments] == ["InstrumentDefinition"]
    assert view.instruments[0].code == "srs"

    export = _module("api.exports.export_dataset").sync(
        models.ExportDataset.SUBMISSIONS, client=admin, format_=models.ExportFormat.PARQUET
    )
    assert isinstance(export.payload, io.BytesIO), export
    table = pq.read_table(export.payload)
    assert table.num_rows == 1
    row = table.to_pylist()[0]
    assert (row["instrument"], row["instrument_version"]) == ("srs", "3.0")

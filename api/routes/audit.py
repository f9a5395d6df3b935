"""The audit trail, for an organization's admins."""

from api.deps import AdminActor, Cursor, Limit, SessionDep
from api.problems import responses
from api.routing import router as api_router
from models.audit import AuditEventPublic
from services.kernel import audit
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(prefix="/v1/audit-events", tags=["audit"])


@router.get("", responses=responses(401, 403, 422))
async def list_audit_events(
    actor: AdminActor, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[AuditEventPublic]:
    """The organization's audit trail, newest first: who read or changed what, and when.
    Admin keys only."""
    rows, next_cursor = await audit.list_events(session, actor=actor, limit=limit, cursor=cursor)
    return Page(items=[AuditEventPublic.model_validate(r) for r in rows], next_cursor=next_cursor)

"""The audit catalogue: one small function per kind of entry."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tierdesk.core import clock
from tierdesk.core.events import emit
from tierdesk.core.models import AuditEntry, Organization, User


class AuditAction(StrEnum):
    ORGANIZATION_CREATED = "organization.created"
    ORGANIZATION_UPDATED = "organization.updated"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    AGENT_UPDATED = "agent.updated"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    CATEGORY_CREATED = "category.created"
    CATEGORY_UPDATED = "category.updated"
    TIER_CREATED = "tier.created"
    TIER_UPDATED = "tier.updated"
    SKILL_CREATED = "skill.created"
    SKILL_UPDATED = "skill.updated"
    SKILL_DELETED = "skill.deleted"
    ROUTING_RULE_CREATED = "routing_rule.created"
    ROUTING_RULE_UPDATED = "routing_rule.updated"
    ROUTING_RULE_DELETED = "routing_rule.deleted"
    ESCALATION_RULE_CREATED = "escalation_rule.created"
    ESCALATION_RULE_UPDATED = "escalation_rule.updated"
    ESCALATION_RULE_DELETED = "escalation_rule.deleted"
    CALENDAR_CREATED = "calendar.created"
    CALENDAR_UPDATED = "calendar.updated"
    SLA_POLICY_CREATED = "sla_policy.created"
    SLA_POLICY_UPDATED = "sla_policy.updated"
    ARTICLE_CREATED = "kb.article_created"
    ARTICLE_UPDATED = "kb.article_updated"
    ARTICLE_STATUS_CHANGED = "kb.article_status_changed"
    ARTICLE_FILE_ADDED = "kb.article_file_added"
    ARTICLE_FILE_REMOVED = "kb.article_file_removed"
    ARTICLE_FLAG_RESOLVED = "kb.article_flag_resolved"
    MAILBOX_CREATED = "mailbox.created"
    MAILBOX_UPDATED = "mailbox.updated"
    NOTIFICATION_PREFERENCES_UPDATED = "user.notification_preferences_updated"
    NOTIFICATION_TEMPLATE_SET = "notification_template.set"
    NOTIFICATION_TEMPLATE_DELETED = "notification_template.deleted"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_ENABLED = "webhook.enabled"
    WEBHOOK_DISABLED = "webhook.disabled"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_DELIVERY_REPLAYED = "webhook.delivery_replayed"
    DIRECTORY_CREATED = "directory.created"
    DIRECTORY_UPDATED = "directory.updated"
    DIRECTORY_DELETED = "directory.deleted"
    DIRECTORY_TESTED = "directory.tested"
    AUTOMATION_REQUESTED = "automation.requested"
    AUTOMATION_RUN = "automation.run"
    AUTOMATION_REFUSED = "automation.refused"
    AUTOMATION_APPROVED = "automation.approved"
    AUTOMATION_REJECTED = "automation.rejected"
    AUTOMATION_EXPIRED = "automation.expired"
    AUTOMATION_INTERRUPTED = "automation.interrupted"
    SELF_SERVICE_CODE_SENT = "self_service.code_sent"
    SELF_SERVICE_CODE_REFUSED = "self_service.code_refused"
    SELF_SERVICE_BLOCKED = "self_service.blocked"


def record(
    *,
    actor: User | None,
    action: AuditAction,
    target_type: str,
    target_id: str | int,
    organization: Organization | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        at=clock.now(),
        actor=actor,
        organization=organization,
        action=action.value,
        target_type=target_type,
        target_id=str(target_id),
        changes=changes or {},
    )


def record_and_emit(
    *,
    actor: User | None,
    action: AuditAction,
    target_type: str,
    target_id: int,
    organization: Organization | None,
    changes: dict[str, Any],
    payload: dict[str, Any],
) -> None:
    """Audit a change and announce it as the domain event of the same name
    (``organization.updated`` …), in the caller's transaction."""
    record(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        organization=organization,
        changes=changes,
    )
    emit(
        action.value,
        organization=organization,
        aggregate_type=target_type,
        aggregate_id=target_id,
        payload=payload,
    )

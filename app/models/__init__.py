"""SQLAlchemy models, one module per aggregate."""
from .access import CONSENT_STATES, MEMBER_ROLES, Consent, ConsentExclusion, EpisodeMember
from .admin import ALERT_KINDS, AccountApplication, AdminAlert, PasswordReset
from .audit import AuditEvent
from .auth import RecoveryCode, SignInThrottle, WebSession
from .base import Base
from .child import Child
from .episode import OPEN_STATUSES, Artefact, Episode, HumanTask
from .index import IndexEntry
from .outbox import MailboxMessage, OutboxMessage
from .people import ORGANISATION_KINDS, ROLES, VETTING_TYPES, Authority, Organisation, User
from .process import ProcessVersion
from .services import Attachment, Service, ServiceTeamMember
from .search_request import SearchRequest, SearchRequestChild

__all__ = [
    "Attachment", "Service", "ServiceTeamMember",
    "ALERT_KINDS", "AccountApplication", "AdminAlert", "PasswordReset",
    "CONSENT_STATES", "Consent", "ConsentExclusion", "EpisodeMember", "MEMBER_ROLES", "ORGANISATION_KINDS",
    "VETTING_TYPES", "Artefact", "AuditEvent", "Authority", "Base", "Child", "Episode", "HumanTask", "IndexEntry",
    "MailboxMessage", "OPEN_STATUSES", "Organisation", "OutboxMessage", "ProcessVersion", "ROLES", "RecoveryCode",
    "SearchRequest", "SearchRequestChild", "SignInThrottle", "User", "WebSession",
]

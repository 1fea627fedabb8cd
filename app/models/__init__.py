"""SQLAlchemy models, one module per aggregate."""
from .access import CONSENT_STATES, MEMBER_ROLES, Consent, ConsentExclusion, EpisodeMember
from .api_client import API_SCOPES, ApiClient, ApiToken
from .admin import ALERT_KINDS, AccountApplication, AdminAlert, PasswordReset
from .audit import AuditEvent
from .auth import RecoveryCode, SignInThrottle, WebSession
from .base import Base
from .child import Child
from .episode import OPEN_STATUSES, Artefact, Episode, HumanTask
from .family import AdultRelationship, Family, FamilyAdult, FamilyChild
from .index import IndexEntry
from .outbox import MailboxMessage, OutboxMessage
from .outcome import HEADLINE_OUTCOMES, OUTCOME_STAGES, PROGRESS_LABELS, OutcomeRecord
from .passkeys import Passkey, PasskeyChallenge, PasskeyRequirement
from .people import ORGANISATION_KINDS, ROLES, VETTING_TYPES, Authority, Organisation, User
from .process import ProcessMigration, ProcessVersion
from .process_draft import ProcessDraft
from .received_notice import NOTICE_STATUSES, ReceivedNotice
from .services import SERVICE_REQUEST_STATUSES, Attachment, Contribution, Service, ServiceRequest, ServiceTeamMember
from .search_request import SearchRequest, SearchRequestChild
from .share import SHARE_STATUSES, ShareDecision
from .transfer import TRANSFER_STATUSES, TransferRequest

__all__ = [
    "Attachment", "Contribution", "SERVICE_REQUEST_STATUSES", "Service", "ServiceRequest", "ServiceTeamMember",
    "ProcessDraft", "ProcessMigration",
    "ALERT_KINDS", "AccountApplication", "AdminAlert", "PasswordReset",
    "CONSENT_STATES", "Consent", "ConsentExclusion", "EpisodeMember", "MEMBER_ROLES", "ORGANISATION_KINDS",
    "VETTING_TYPES", "Artefact", "AuditEvent", "Authority", "Base", "Child", "Episode", "HumanTask", "IndexEntry",
    "MailboxMessage", "OPEN_STATUSES", "Organisation", "OutboxMessage", "ProcessVersion", "ROLES", "RecoveryCode",
    "SearchRequest", "SearchRequestChild", "SignInThrottle", "TRANSFER_STATUSES", "TransferRequest", "User",
    "WebSession", "Passkey", "PasskeyChallenge", "PasskeyRequirement", "SHARE_STATUSES", "ShareDecision",
    "AdultRelationship", "Family", "FamilyAdult", "FamilyChild",
    "API_SCOPES", "ApiClient", "ApiToken", "NOTICE_STATUSES", "ReceivedNotice",
    "HEADLINE_OUTCOMES", "OUTCOME_STAGES", "PROGRESS_LABELS", "OutcomeRecord",
]

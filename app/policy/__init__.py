"""Who may do what to which episode, task, child and record: the one place that decides.

The default is deny. The rules (MISSION N4, N5; CAF.md decision 4):
- An administrator sees every episode of their own authority, whatever the consent.
- A practitioner sees an episode only as a current member of it, and only while the family's
  consent allows:
  - no consent yet, or consent refused: the originator alone (they are obtaining it);
  - consent given: every current member (originator, lead professional, Team Around the Child
    members, contributors);
  - consent withdrawn: the lead professional alone.
- A practitioner whose organisation, or kind of organisation, the consent excludes never sees it.
- Nobody sees a deleted episode; process owners and service teams see no episode content here.
- A decision under the duty to share (duty_to_share.py), once a second administrator approves it,
  lets its recipient read the records it names until it expires: nothing else of the episode.
- An administrator gives and takes the roles of their authority's accounts, except process owner:
  the process library is national, so that role is given and taken only by an operator
  (`ecaf users grant` and `revoke`).

Lists are filtered with the same SQL as single records, so a record one may not see is
indistinguishable from one that does not exist (404 either way).
"""
from .accounts import (NOT_ON_YOURSELF, is_usable, may_act_on_account, may_change_role_of, may_get_password_link,
                       may_present_secrets, may_record_vetting, unusable_because, usable_clause, vetting_problem_clause)
from .attachments import is_attachment_of, is_request_of, may_attach
from .episodes import (EPISODE_ACTIONS, authority_id_of, child_filter, claimable_roles, episode_filter,
                       is_administrator_of, join_refusal, lead_refusal, may, may_claim, may_complete, may_complete_now,
                       may_hear_why_not_lead, may_release, may_search_index, member_role, permissions, task_filter,
                       visible_episode)
from .outcomes import lead_can_follow_up
from .returns import NHS_WITHHELD, nhs_number_for_returns, returns_episode_filter
from .roles import NATIONAL_ROLES, may_grant_role
from .scope import (TASKLESS_PARTS, authority_clause, held_here_clause, holds_tasks, leads_clause,
                    of_own_authority, task_holder_clause)
from .transfers import (TRANSFERS_SCOPE, acting_authority_id, incoming_transfer_filter, is_released_to,
                        is_transfer_client, may_decide_transfer, may_fetch_transfer_file, may_lead_moved_episode,
                        may_receive_transfers, may_see_child, may_see_transfer_request, may_import_for,
                        outgoing_transfer_filter)

__all__ = ["EPISODE_ACTIONS", "NATIONAL_ROLES", "is_attachment_of", "is_request_of", "may_attach",
           "authority_id_of", "child_filter", "claimable_roles",
           "episode_filter", "is_administrator_of", "is_usable",
           "join_refusal", "lead_refusal", "may", "may_claim", "may_complete",
           "may_complete_now", "may_hear_why_not_lead", "may_grant_role", "may_present_secrets", "may_release",
           "may_search_index",
           "member_role", "permissions", "task_filter", "unusable_because", "usable_clause", "visible_episode",
           "vetting_problem_clause", "incoming_transfer_filter", "may_decide_transfer", "may_lead_moved_episode",
           "may_receive_transfers", "may_see_child", "may_see_transfer_request", "outgoing_transfer_filter",
           "NOT_ON_YOURSELF", "may_act_on_account", "may_change_role_of", "may_get_password_link", "may_record_vetting",
           "TASKLESS_PARTS", "authority_clause", "held_here_clause", "holds_tasks", "leads_clause", "of_own_authority",
           "task_holder_clause", "is_released_to", "lead_can_follow_up",
           "NHS_WITHHELD", "nhs_number_for_returns", "returns_episode_filter", "TRANSFERS_SCOPE",
           "acting_authority_id", "is_transfer_client", "may_fetch_transfer_file", "may_import_for"]

# Requests to services and contributions (their modules read the names above at call time).
from .contributions import (contribution_refusal, invitable_members, may_contribute_to, may_invite,  # noqa: E402
                            why_not_invitable)
from .service_requests import (consent_excludes, has_team_inbox, is_request_attachment,  # noqa: E402
                               is_team_member, may_decide, may_request, offered_services, redirect_target,
                               request_refusal, service_refusal, shown_to_team, team_filter, team_recipients,
                               team_task, visible_to_team, why_not_requestable)

__all__ += ["consent_excludes", "contribution_refusal", "has_team_inbox", "invitable_members",
            "is_request_attachment", "is_team_member", "may_contribute_to", "may_decide", "may_invite",
            "may_request", "offered_services", "redirect_target", "request_refusal", "service_refusal",
            "shown_to_team", "team_filter", "team_recipients", "team_task", "visible_to_team",
            "why_not_invitable", "why_not_requestable"]

# Families: seen through their children's episodes (their module reads the names above at call time).
from .families import (FAMILY_PARTS, may_change_family, may_change_through, may_place_child,  # noqa: E402
                       may_see_family, may_start_sibling_caf, visible_family_episodes)

__all__ += ["FAMILY_PARTS", "may_change_family", "may_change_through", "may_place_child", "may_see_family",
            "may_start_sibling_caf", "visible_family_episodes"]

from .duty_to_share import (approval_refusal, approvers, is_live, is_recipient, may_read_shared_record,  # noqa: E402
                            may_record_share_decision, recipient_refusal, shared_access_refusal,
                            shared_with_filter)

__all__ += ["approval_refusal", "approvers", "is_live", "is_recipient", "may_read_shared_record", "may_record_share_decision",
            "recipient_refusal", "shared_access_refusal", "shared_with_filter"]

# Client systems calling the JSON API.
from .api_clients import (api_client_filter, client_may, is_live_client, live_client_clause,  # noqa: E402
                          may_manage_api_clients)

__all__ += ["api_client_filter", "client_may", "is_live_client", "live_client_clause", "may_manage_api_clients"]

"""No module outside app/policy/ decides access: none compares a user's role, a membership's part
or an authority in a query or a condition. Every such rule is a function or a SQL clause of the
policy package, and the rest of the code asks it.

The scan is of comparisons (==, !=, in, not in) one of whose sides is a `.role` attribute, an
authority id (`.authority_id`, `.home_authority_id`, `.to_authority_id`, a name `authority_id`)
or `authority_id_of(...)`. A join condition (two columns of models, like
`Authority.id == Episode.authority_id`) decides nothing and is passed over. What remains is named
below with why it is not an access decision; an entry that no longer matches anything fails too,
so the list cannot outgrow the code.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("app", "handlers")
POLICY = ROOT / "app" / "policy"
AUTHORITY_ATTRIBUTES = {"authority_id", "home_authority_id", "to_authority_id"}

# (module, the comparison as ast.unparse writes it): why it decides nothing about access.
ALLOWED = {
    ("app/services/transfers/requests.py", "TransferRequest.to_authority_id == authority_id"):
        "whether the asking authority is already waiting for this request (who may ask: may_receive_transfers)",
    ("app/services/received_notices.py", "notice.authority_id != client.authority_id"):
        "a notice names the authority of the client that sent it; who may change it is the client's own (policy)",
    ("app/web/access.py", "user.role not in access"):
        "the pages' role gate; each page's roles come from the policy (e.g. DIRECTORY_KEEPERS)",
    ("app/membership.py", "existing.role == role"):
        "adding a member who is already in that part changes nothing (the caller asked the policy first)",
    ("app/services/accounts.py", "details.role not in ROLES"):
        "form validation: the posted role is one eCAF knows (who may give it: policy.may_grant_role)",
    ("app/services/accounts.py", "details.role != user.role"):
        "whether the form changes the role at all; who may is policy.may_change_role_of and may_grant_role",
    ("app/cli_users.py", "user.role != role"):
        "an operator's `users revoke` names the role it takes away; a different one is a typing mistake",
    ("app/services/directory.py", "Service.authority_id == authority_id"):
        "a service's name is unique within its authority (the administrator's own, from create/edit)",
    ("app/services/transfers/checks.py", "source.authority_id == receiving.id"):
        "an episode already in the receiving authority has nowhere to move (who may import: the policy)",
    ("app/services/transfers/checks.py", "source.authority_id != document['source_authority']['id']"):
        "the file must describe the episode as it is (integrity, not access)",
    ("app/services/transfers/requests.py", "episode.authority_id == authority_id"):
        "asking for an episode the authority already holds is a mistake the form names",
    ("app/accounts/passkeys.py", "PasskeyRequirement.authority_id == authority_id"):
        "reads and writes the authority's own passkey settings (the settings page scopes the authority)",
    ("app/web/layout.py", "user.role in roles"):
        "which menu entries a role is shown: each page's own role gate decides who may open it",
    ("app/accounts/passkeys.py", "user.role in required_roles(db, policy.authority_id_of(user))"):
        "how a user proves who they are at sign-in (a passkey instead of a code), not what they may see; "
        "still to move beside the sign-in rules in policy/accounts.py",
}


def _is_column(node: ast.AST) -> bool:
    """`Model.column` or `_Alias.column`: a class's attribute, by the naming of models and aliases."""
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id.lstrip("_")[:1].isupper())


def _decides(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "role" or node.attr in AUTHORITY_ATTRIBUTES
    if isinstance(node, ast.Name):
        return node.id == "authority_id"
    if isinstance(node, ast.Call):
        function = node.func
        return getattr(function, "attr", getattr(function, "id", None)) == "authority_id_of"
    return False


def findings(source: str) -> list[tuple[int, str]]:
    """(line, comparison) for each comparison in `source` that tests a role or an authority."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
            continue
        sides = [node.left, *node.comparators]
        if not any(_decides(side) for side in sides) or all(_is_column(side) for side in sides):
            continue
        found.append((node.lineno, ast.unparse(node)))
    return found


def _scan() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if POLICY in path.parents:
                continue
            module = path.relative_to(ROOT).as_posix()
            for line, comparison in findings(path.read_text(encoding="utf-8")):
                found.setdefault((module, comparison), []).append(line)
    return found


def test_the_scan_catches_role_and_authority_tests():
    """The scan itself: each way of deciding access outside the policy is caught, joins are not."""
    caught = [
        'if user.role == "administrator": pass',
        'ok = current_user().role in ("practitioner", "service_team")',
        'q = select(Episode).where(Episode.authority_id == authority_id)',
        'q = select(Alert).where(Alert.authority_id == policy.authority_id_of(user))',
        'q = select(Member).where(Member.role != "contributor")',
        'same = target.organisation.authority_id != admin_authority',
    ]
    for source in caught:
        assert findings(source), f"not caught: {source}"
    for source in ('q = select(A).join(Episode, Authority.id == Episode.authority_id)',
                   'q = select(A).where(_FilterEpisode.authority_id == Authority.id)',
                   'ok = policy.may_grant_role(admin, user.role)'):
        assert findings(source) == [], f"caught but decides nothing: {source}"


def test_no_module_outside_the_policy_decides_access():
    found = _scan()
    unexplained = [f"{module}:{lines[0]}: {comparison}" for (module, comparison), lines in sorted(found.items())
                   if (module, comparison) not in ALLOWED]
    assert not unexplained, ("Decide access in app/policy/ and call it from here (or, if this is not an "
                             "access decision, add it to ALLOWED saying why):\n" + "\n".join(unexplained))


def test_every_allowed_comparison_still_exists():
    found = _scan()
    stale = [f"{module}: {comparison}" for module, comparison in ALLOWED if (module, comparison) not in found]
    assert not stale, "No longer in the code: take these out of ALLOWED:\n" + "\n".join(stale)

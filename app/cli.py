"""The `ecaf` command: database, processes, demo data, background worker, timers, web server."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from app.cli_audit import audit_trail
from app.cli_keys import keys, require_secrets
from app.cli_serve import serve
from app.cli_users import users
from app.cli_worker import worker
from app.config import Config
from app.engine.errors import ProcessInvalid


def _runtime():
    from app.jobs.runtime import Runtime

    config = Config.from_env()
    _keys_ready(config)
    return Runtime.with_jobs(config)


def _keys_ready(config: Config) -> bytes:
    """SECRET_KEY, ECAF_TOTP_KEY and the audit key, each usable here, and message channels' settings that
    can work (every writing command queues messages), or the command stops saying why. Returns the audit key."""
    from app.config import ChannelsMisconfigured

    require_secrets(config)
    try:
        config.check_channels()
    except ChannelsMisconfigured as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    return _audit_key(config)


def _audit_key(config: Config) -> bytes:
    """Every command that writes seals audit rows: without a usable key it stops here, saying why."""
    from app.config import AuditKeyMissing

    try:
        return config.audit_signing_key()
    except AuditKeyMissing as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


@click.group(help="eCAF: the electronic Common Assessment Framework.\n\n"
                  "Settings come from the environment: DATABASE_URL (default: a SQLite file in instance/), "
                  "REDIS_URL (optional), SMTP_HOST or NOTIFY_API_KEY, INDEX_ENDPOINT_URL, SECRET_KEY, ECAF_TOTP_KEY, "
                  "ECAF_AUDIT_KEY, ECAF_TRANSFER_KEY (README, Operating). In production: `ecaf serve` and `ecaf worker`s "
                  "as docs/deploy/production.md describes.")
def main() -> None:
    from app import logs

    logs.configure()  # JSON lines with request ids, or text on a terminal (ECAF_LOG_FORMAT)


@main.group(help="The database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Create or migrate the database schema to the newest version.")
def db_upgrade() -> None:
    from app.migrate import upgrade

    url = Config.from_env().database_url
    upgrade(url)
    click.echo("database is up to date")


@main.group(help="Deployed process models (BPMN).")
def processes() -> None:
    pass


@processes.command("deploy", help="Deploy the process model in DIRECTORY (default: the shipped processes/) "
                                  "as a new version, unless that exact content is deployed already.")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--note", help="A change note recorded with the version.")
@click.option("--by", "by_name", help="The process owner deploying it (username or email).")
@click.option("--process", "process_id", default="caf_episode", show_default=True,
              help="The process to deploy from the files (its called processes come with it).")
def processes_deploy(directory: Path | None, note: str | None, by_name: str | None, process_id: str) -> None:
    from app import audit
    from app.cli_users import _operator
    from app.engine.library import Bundle, deploy

    runtime = _runtime()
    bundle = Bundle.from_directory(directory or runtime.config.processes_dir)
    try:
        with runtime.db.session() as session:
            by = _process_owner(session, by_name) if by_name else None
            version, created = deploy(session, bundle, process_id=process_id, deployed_by_id=by,
                                      change_note=note)
            label = version.label
            if created:
                # Files kept in git are reviewed there; the audit says which operator ran it, and for whom.
                audit.record(session, "process_deployed", actor_id=by, version=label, note=note, via="command line",
                             operator=_operator(), by=by_name)
    except ProcessInvalid as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"deployed {label}" if created else f"{label} is already deployed with this content")


def _process_owner(session, name: str) -> int:
    """The id of the process owner named by username or email; exits when it is anyone else."""
    from app.accounts import sign_in
    from app.policy import process_library

    user = sign_in.find_user(session, name)
    if not process_library.is_process_owner(user):
        click.echo(f"{name} is not a process owner: only process owners deploy and migrate", err=True)
        sys.exit(1)
    return user.id


def deploy_shipped_model(database_url: str, processes_dir: Path, audit_key: bytes | None = None) -> str | None:
    """On first start, when no process is deployed yet, deploy the shipped processes/ (so the first
    episode has a model to run). Returns the version deployed, or None."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from app import audit
    from app.db import Database
    from app.engine.library import Bundle, deploy
    from app.models import ProcessVersion

    db = Database(database_url, audit_key=audit_key)
    try:
        with db.session() as session:
            try:
                if session.scalar(select(ProcessVersion.id).limit(1)) is not None:
                    return None
            except DBAPIError:
                click.echo("the database has no schema yet: run `ecaf db upgrade` first", err=True)
                sys.exit(1)
            version, _ = deploy(session, Bundle.from_directory(processes_dir), change_note="shipped with eCAF")
            from app.cli_users import _operator
            audit.record(session, "process_deployed", version=version.label, note=version.change_note,
                         via="first start", operator=_operator())
            return version.label
    finally:
        db.dispose()


@processes.command("list", help="Every deployed version: content hash, who deployed it and when, its change "
                                "note and how many open episodes run on it.")
def processes_list() -> None:
    from sqlalchemy import func, select

    from app.models import OPEN_STATUSES, Episode, ProcessVersion, User

    runtime = _runtime()
    with runtime.db.session() as session:
        open_counts = dict(session.execute(select(Episode.process_version_id, func.count())
                                           .where(Episode.status.in_(OPEN_STATUSES))
                                           .group_by(Episode.process_version_id)).all())
        rows = session.execute(select(ProcessVersion, User.full_name).outerjoin(
            User, User.id == ProcessVersion.deployed_by_id).order_by(ProcessVersion.process_id,
                                                                      ProcessVersion.version)).all()
        if not rows:
            click.echo("no process is deployed: run `ecaf processes deploy`")
            return
        for version, by in rows:
            click.echo(f"{version.label:24} {version.content_hash[:12]}  {version.deployed_at:%Y-%m-%d %H:%M} UTC  "
                       f"{by or 'command line':20}  {open_counts.get(version.id, 0):6} open  "
                       f"{version.change_note or ''}".rstrip())


def _version(session, text: str, process_id: str):
    from sqlalchemy import select

    from app.models import ProcessVersion
    from app.services.process_migrations import MigrationRefused, parse_version

    try:
        process_id, number = parse_version(text, process_id)
    except MigrationRefused as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    version = session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                          ProcessVersion.version == number))
    if version is None:
        click.echo(f"{process_id} has no version {number}", err=True)
        sys.exit(1)
    return version


@processes.command("export", help="Write VERSION (like caf_episode:3, or 3) to DIRECTORY as files: its BPMN, "
                                  "and its forms in DIRECTORY/forms. `ecaf processes deploy DIRECTORY` reads "
                                  "them back as the same version.")
@click.argument("version")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace the process model already in DIRECTORY.")
@click.option("--process", "process_id", default="caf_episode", show_default=True,
              help="The process, when VERSION is only a number.")
def processes_export(version: str, directory: Path, overwrite: bool, process_id: str) -> None:
    from app import audit
    from app.services.process_files import ExportRefused, write_version

    runtime = _runtime()
    with runtime.db.session() as session:
        found = _version(session, version, process_id)
        try:
            written = write_version(found, directory, overwrite=overwrite)
        except ExportRefused as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        audit.record(session, "process_exported", version=found.label, directory=str(directory),
                     via="command line")
    click.echo(f"wrote {found.label} ({found.content_hash[:12]}) to {directory}: {len(written)} files")


@processes.command("diff", help="What changed from version SOURCE to version TARGET (like 2 3, or "
                                "caf_episode:2 caf_episode:3): steps added, removed and changed.")
@click.argument("source")
@click.argument("target")
@click.option("--process", "process_id", default="caf_episode", show_default=True)
def processes_diff(source: str, target: str, process_id: str) -> None:
    from app.engine.diff import version_diff

    runtime = _runtime()
    with runtime.db.session() as session:
        found = version_diff(_version(session, source, process_id), _version(session, target, process_id))
    click.echo(f"{found.old.label} -> {found.new.label}")
    if found.is_empty:
        click.echo("no step changed")
    for change in found.changes:
        where = f" in {change.process}" if change.process != found.old.process_id else ""
        click.echo(f"{change.kind:8} {change.label}{where}" + (f": {', '.join(change.what)}" if change.what else ""))
        for detail in change.details:
            click.echo(f"           {detail}")
    for name in found.added_processes:
        click.echo(f"added    process {name}")
    for name in found.removed_processes:
        click.echo(f"removed  process {name}")


@processes.command("migrate", help="Move open episodes of version --from to the newer version --to. With "
                                   "--dry-run, report which can move, why the others cannot, and what moving "
                                   "resets, changing nothing.")
@click.option("--from", "source", required=True, help="The version the episodes run on (like 2 or caf_episode:2).")
@click.option("--to", "target", required=True, help="The newer version to move them to.")
@click.option("--episode", "episodes", multiple=True, type=int, help="Only this episode (repeat for more); "
                                                                     "default: every open episode of --from.")
@click.option("--stage", type=click.Choice(["preparation", "assessment", "delivery", "closure"]),
              help="Only episodes at this stage.")
@click.option("--dry-run", is_flag=True, help="Report only; change nothing.")
@click.option("--note", help="Why they move (required unless --dry-run): kept with each result and audited.")
@click.option("--by", "by_name", help="The process owner migrating them (username or email; required unless "
                                      "--dry-run).")
@click.option("--process", "process_id", default="caf_episode", show_default=True)
def processes_migrate(source, target, episodes, stage, dry_run, note, by_name, process_id) -> None:
    from app.services import process_migrations as migrations

    runtime = _runtime()
    try:
        source_process, from_number = migrations.parse_version(source, process_id)
        target_process, to_number = migrations.parse_version(target, process_id)
        if source_process != target_process:
            raise migrations.MigrationRefused(["Episodes move only between versions of the same process"])
        chosen = list(episodes) or None
        if dry_run:
            plan = migrations.dry_run(runtime, source_process, from_number, to_number, episode_ids=chosen,
                                      stage=stage)
            _print_plan(plan)
            return
        if not by_name:
            raise migrations.MigrationRefused(["Say who migrates: --by and a process owner's username or email"])
        with runtime.db.session() as session:
            by = _process_owner(session, by_name)
        result = migrations.run(runtime, source_process, from_number, to_number, episode_ids=chosen, stage=stage,
                                note=note, by_user_id=by)
    except migrations.MigrationRefused as exc:
        click.echo("\n".join(exc.problems), err=True)
        sys.exit(1)
    with runtime.db.session() as session:
        batch = migrations.batch_results(session, result.batch)
    for row in batch.rows if batch else []:
        click.echo(f"{row.reference:12} {row.status:9} " + "; ".join(row.reasons + row.effects))
    click.echo(f"batch {result.batch}: {len(result.migrated)} migrated, {len(result.refused)} refused, "
               f"{len(result.failed)} failed")
    _drain(runtime)
    sys.exit(1 if result.failed else 0)


def _print_plan(plan) -> None:
    for report in plan.episodes:
        lines = report.effects() if report.migratable else report.check.reasons
        click.echo(f"{report.reference:12} {report.stage:12} {'can move' if report.migratable else 'cannot':9} "
                   + ("; ".join(lines) or "nothing is reset"))
    click.echo(f"{plan.source.label} -> {plan.target.label}: {len(plan.episodes)} open episodes, "
               f"{len(plan.migratable)} can move, {len(plan.refused)} cannot (dry run: nothing changed)")


@main.command(help="Load demo data: an authority, organisations, users, and episodes at every stage.")
def demo() -> None:
    from app.demo import load_demo
    from app.engine.library import Bundle, deploy

    runtime = _runtime()
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(runtime.config.processes_dir))
    loaded = load_demo(runtime.db, runtime.engine)
    _drain(runtime)
    click.echo("demo data loaded" if loaded else "demo data is already there")


def _drain(runtime) -> None:
    """Without Redis, deliver what the steps queued before the command exits."""
    dispatcher = runtime.engine.dispatcher
    if hasattr(dispatcher, "run_due"):
        dispatcher.run_due()


@main.group(help="Deadlines.")
def timers() -> None:
    pass


@timers.command("sweep", help="Fire every due timer and deliver every pending message now.")
def timers_sweep() -> None:
    from app.jobs.sweep import sweep

    report = sweep(_runtime())
    click.echo(f"woke {report.woken} episodes ({report.failed} failed); delivered {report.delivered} messages "
               f"({report.undelivered} not delivered)")


@main.command(help="Serve the web app on Flask's development server, for development only (`ecaf serve` is the "
                   "production server). Without REDIS_URL, background jobs run in this process.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    import os

    from app import create_app

    config = Config.from_env()
    if "ECAF_COOKIE_SECURE" not in os.environ and host in ("127.0.0.1", "localhost", "::1"):
        # Plain HTTP on this machine only; behind HTTPS in production the cookie is Secure.
        config.cookie_secure = False
        config.local_run = True  # the same test as the cookie: development keys only here
    # After the local-run decision above: it says whether development keys will do.
    shipped = deploy_shipped_model(config.database_url, config.processes_dir, _keys_ready(config))
    if shipped:
        click.echo(f"deployed the shipped process model as {shipped}")
    app = create_app(config, start_jobs=True)
    click.echo(f"eCAF is running on http://{host}:{port}/ (development server: use `ecaf serve` in production)")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


main.add_command(users)
main.add_command(serve)
main.add_command(worker)
main.add_command(audit_trail)
main.add_command(keys)

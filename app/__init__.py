"""eCAF: the electronic Common Assessment Framework."""
from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader

from app.config import PROJECT_ROOT, Config
from app.jobs.runtime import Runtime

csrf = CSRFProtect()


def create_app(config: Config | None = None, *, start_jobs: bool = False) -> Flask:
    """The app factory. `start_jobs` runs the in-process job runner (when there is no Redis)."""
    config = config or Config.from_env()
    # GOV.UK Frontend's stylesheet expects its files under /assets/.
    app = Flask(__name__, static_url_path="/assets", static_folder=str(PROJECT_ROOT / "static"))
    app.jinja_loader = ChoiceLoader([
        FileSystemLoader(str(PROJECT_ROOT / "templates")),
        PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
    ])
    app.config.update(
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,  # the longest CAF form is far smaller
        MAX_FORM_MEMORY_SIZE=2 * 1024 * 1024,
        MAX_FORM_PARTS=5000,
        WTF_CSRF_TIME_LIMIT=config.absolute_timeout_hours * 3600,
        WTF_CSRF_SSL_STRICT=config.cookie_secure,
    )
    runtime = Runtime.with_jobs(config)
    app.extensions["ecaf"] = runtime
    if start_jobs and hasattr(runtime.engine.dispatcher, "start"):
        runtime.engine.dispatcher.start()

    from app.web import access, errors, layout, security
    from app.web.sessions import ServerSessionInterface

    app.session_interface = ServerSessionInterface(runtime)
    csrf.init_app(app)
    security.install(app)
    access.install(app)
    layout.install(app)
    errors.install(app)

    from app.web import (accounts, admin, alerts, attachments, audit_trail, auth, children, contributions, episode_people,
                         episodes, national_index, reports, search_queue, search_requests, services_directory, status, support,
                         tasks, transfers, vetting)

    for blueprint in (auth.bp, support.bp, status.bp, tasks.bp, children.bp, episodes.bp, episode_people.bp,
                      national_index.bp, audit_trail.bp, transfers.bp, vetting.bp, search_requests.bp, admin.bp, alerts.bp,
                      search_queue.bp, reports.bp, accounts.bp, services_directory.bp,
                      attachments.bp, contributions.bp):
        app.register_blueprint(blueprint)
    from app.web import service_requests as service_requests_web
    app.register_blueprint(service_requests_web.bp)
    from app.web import authority_settings
    app.register_blueprint(authority_settings.bp)
    from app.web import process_library
    app.register_blueprint(process_library.bp)
    from app.web import process_migrations
    app.register_blueprint(process_migrations.bp)
    return app

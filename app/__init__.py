"""eCAF: the electronic Common Assessment Framework."""
from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import PROJECT_ROOT, Config
from app.jobs.runtime import Runtime

csrf = CSRFProtect()


def create_app(config: Config | None = None, *, start_jobs: bool = False) -> Flask:
    """The app factory. `start_jobs` runs the in-process job runner (when there is no Redis)."""
    config = config or Config.from_env()
    # Outside tests and a local run: no start without its own SECRET_KEY and ECAF_TOTP_KEY (SecretsMissing says why).
    config.check_secrets()
    # GOV.UK Frontend's stylesheet expects its files under /assets/.
    app = Flask(__name__, static_url_path="/assets", static_folder=str(PROJECT_ROOT / "static"))
    app.jinja_loader = ChoiceLoader([
        FileSystemLoader(str(PROJECT_ROOT / "templates")),
        PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
    ])
    app.config.update(
        SECRET_KEY=config.session_secret_key(),
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

    from app.web import access, errors, layout, observability, request_db, security
    from app.web.sessions import ServerSessionInterface

    app.session_interface = ServerSessionInterface(runtime)
    request_db.install(app)
    observability.install(app)  # first: a request refused by any later hook still gets its id, figure and line
    csrf.init_app(app)
    security.install(app)
    access.install(app)
    layout.install(app)
    errors.install(app)

    from app.web import (accounts, admin, alerts, attachments, audit_trail, auth, authority_settings, children,
                         contributions, episode_people, episodes, families, health, national_index, passkey_settings,
                         passkeys, process_guide, process_library,
                         process_migrations, reports, search_queue, search_requests, service_requests,
                         services_directory, status, support, tasks, transfer_requests, transfers, vetting)

    for module in (health, auth, support, status, tasks, children, episodes, episode_people, families,
                   national_index, audit_trail, transfers, vetting, search_requests, admin, alerts, search_queue,
                   reports, accounts, services_directory, attachments, contributions, service_requests,
                   authority_settings, process_library, process_guide, process_migrations, transfer_requests, passkeys,
                   passkey_settings):
        app.register_blueprint(module.bp)
    from app.web import assessment_sections  # a sectioned form's pages (the assessment)
    app.register_blueprint(assessment_sections.bp)
    from app.web import duty_to_share  # decisions to share without consent, and what they share
    app.register_blueprint(duty_to_share.bp)
    from app.api import routes as api_routes  # the JSON API for client systems
    api_routes.install(app, csrf)
    from app.web import api_clients  # administrators register and revoke those client systems
    app.register_blueprint(api_clients.bp)
    from app.web import metrics, system
    for module in (metrics, system):
        app.register_blueprint(module.bp)
    if config.proxy_hops > 0:
        # Behind that many trusted proxies the client's address, scheme and host are theirs to tell: the
        # per-address sign-in throttle counts the real client, not the proxy. 0 trusts no header.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops,
                                x_host=config.proxy_hops)
    return app

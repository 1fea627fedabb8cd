"""eCAF: the electronic Common Assessment Framework."""
from __future__ import annotations

from flask import Flask

from app.config import PROJECT_ROOT, Config
from app.jobs.runtime import Runtime


def create_app(config: Config | None = None, *, start_jobs: bool = False) -> Flask:
    """The app factory. `start_jobs` runs the in-process job runner (when there is no Redis)."""
    config = config or Config.from_env()
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"))
    app.config["SECRET_KEY"] = config.secret_key
    runtime = Runtime.with_jobs(config)
    app.extensions["ecaf"] = runtime
    if start_jobs and hasattr(runtime.engine.dispatcher, "start"):
        runtime.engine.dispatcher.start()

    from app.web import status

    app.register_blueprint(status.bp)
    return app

"""Blueprints of the web app, one per audience or area."""
from __future__ import annotations

from flask import current_app


def runtime():
    """The app's runtime (config, database, engine), built once by the app factory."""
    return current_app.extensions["ecaf"]

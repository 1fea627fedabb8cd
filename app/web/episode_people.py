"""(in progress)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("episode_people", __name__)

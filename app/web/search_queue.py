"""(in progress)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("search_queue", __name__)

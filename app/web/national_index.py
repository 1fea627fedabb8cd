"""(in progress)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("national_index", __name__)

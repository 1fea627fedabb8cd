"""(in progress)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("audit_trail", __name__)

"""PDFs of printed records, rendered by WeasyPrint from the print page, with no network access."""
from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.security import safe_join

from app.config import PROJECT_ROOT

STATIC = PROJECT_ROOT / "static"
BASE = "http://ecaf.invalid/"
ASSETS = BASE + "assets/"


def _fetcher():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticFetcher(URLFetcher):
        """Serves /assets/ from disk and refuses everything else: a print never reaches the network."""

        def fetch(self, url, headers=None):
            if url.startswith(ASSETS):
                joined = safe_join(str(STATIC), url[len(ASSETS):].split("?")[0])
                if joined and Path(joined).is_file():
                    path = Path(joined)
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": kind}, 200)
            raise ValueError(f"blocked {url}")

    return StaticFetcher()


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, base_url=BASE, url_fetcher=_fetcher()).write_pdf()

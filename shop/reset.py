"""`python -m shop.reset`: drop every shop table and seed the database afresh."""

from __future__ import annotations

import os
import sys

from shop.config import DEFAULT_DATABASE_URL, resolve_database_url
from shop.db import make_engine, reset_db


def main() -> int:
    # The token is not needed to reset, only the database URL.
    url = resolve_database_url(os.environ.get("SHOP_DATABASE_URL", "").strip()
                               or DEFAULT_DATABASE_URL)
    engine = make_engine(url)
    reset_db(engine)
    engine.dispose()
    print(f"shop: database reset and seeded ({engine.url.render_as_string(hide_password=True)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

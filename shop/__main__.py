"""`python -m shop`: create/seed the database if needed, then serve on SHOP_PORT."""

from __future__ import annotations

import sys

import uvicorn

from shop.config import ConfigError, Settings
from shop.db import init_db, make_engine


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"shop: {exc}", file=sys.stderr)
        return 2
    # Seed once here, before the workers start, so they never race on it.
    engine = make_engine(settings.database_url)
    seeded = init_db(engine)
    engine.dispose()
    if seeded:
        print("shop: database created and seeded from shop/data/db.json", file=sys.stderr)
    uvicorn.run(
        "shop.server:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

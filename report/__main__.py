"""`python -m report`: write results/report.html (and optionally the numbers as JSON)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from sqlalchemy.engine import make_url

from report.metrics import EXCLUDED_FORMS, compute, read_events
from report.render import render

logger = logging.getLogger("report")
DEFAULT_TRACKER_DB_URL = "sqlite:///var/tracker.db"


def _ask_shop(shop_url: Optional[str], token: str, what: str,
              call: Callable[[Any], Dict[str, Any]]) -> Tuple[Optional[Dict[str, Any]], str]:
    """``call(client)`` on the shop's client (actions/shop_client.py: its timeouts, one retry of
    a read, its typed errors), or (None, why) when the shop cannot be asked or refuses."""
    if not shop_url:
        return None, "(no --shop-url)"
    from actions.shop_client import ShopClient, ShopError

    client = ShopClient(base_url=shop_url, token=token, retries=1)
    try:
        return call(client), ""
    except ShopError as exc:
        logger.warning("%s unavailable: %s", what, exc)
        message = exc.message.rstrip(".")  # the note ends a sentence of the page
        if exc.status:  # it answered, and refused (401 token, 404 no such endpoint, 5xx)
            return None, f"(shop answered {exc.status}: {message})"
        return None, f"(shop: {message})"
    finally:
        client.close()


def fetch_ratings(shop_url: Optional[str], token: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """The shop's rating summary, or (None, why) when the shop cannot be asked."""
    return _ask_shop(shop_url, token, "ratings",
                     lambda client: client.list_ratings(limit=1)["summary"])


DESK_KEYS = ("handoffs", "time_to_claim", "time_to_first_reply", "outcomes")


def _desk_stats(client: Any) -> Dict[str, Any]:
    from actions.shop_client import ShopUnavailable

    # GET /desk/stats takes the bearer token only (no agent session), as GET /ratings does;
    # the client has no method of its own for it, so the report uses its generic read
    data = client._get("/desk/stats")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in DESK_KEYS):
        raise ShopUnavailable("unexpected /desk/stats payload")
    return data


def fetch_desk_stats(shop_url: Optional[str],
                     token: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """The agent desk's numbers (``GET /desk/stats``), or (None, why) when the shop cannot be
    asked, has no such endpoint or refuses (wrong token: 401)."""
    return _ask_shop(shop_url, token, "desk stats", _desk_stats)


RISK_KEYS = ("decisions", "operations", "reasons", "reviews")


def _risk_stats(client: Any) -> Dict[str, Any]:
    from actions.shop_client import ShopUnavailable

    # GET /risk/stats takes the bearer token only, as GET /desk/stats does (docs/risk.md)
    data = client._get("/risk/stats")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in RISK_KEYS) \
            or data.get("mode") not in ("enforce", "monitor") \
            or not isinstance(data.get("threshold"), int):
        raise ShopUnavailable("unexpected /risk/stats payload")
    return data


def fetch_risk_stats(shop_url: Optional[str],
                     token: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """The risk control's numbers of order changes (``GET /risk/stats``), or (None, why) when
    the shop cannot be asked, has no such endpoint (a shop without risk control: 404) or
    refuses (wrong token: 401)."""
    return _ask_shop(shop_url, token, "risk stats", _risk_stats)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m report", description=__doc__)
    parser.add_argument("--tracker-db-url",
                        default=os.environ.get("TRACKER_DB_URL") or DEFAULT_TRACKER_DB_URL,
                        help="SQLAlchemy URL of Rasa's SQL tracker store (TRACKER_DB_URL)")
    parser.add_argument("--shop-url", default=os.environ.get("SHOP_URL"),
                        help="shop backend for the ratings, the agent desk's and the risk "
                             "control's numbers (SHOP_URL); omitted: none of them")
    parser.add_argument("--shop-token", default=os.environ.get("SHOP_API_TOKEN", ""),
                        help="bearer token of the shop (SHOP_API_TOKEN)")
    parser.add_argument("--out", default="results/report.html", type=Path)
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--exclude-form", action="append", default=None,
                        help=f"forms that are not flows (default: {', '.join(EXCLUDED_FORMS)})")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Build the report; exit code 0 even without the shop's parts (ratings, desk, risk)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    url = make_url(args.tracker_db_url)
    if url.drivername.startswith("sqlite") and url.database and \
            not Path(url.database).exists():
        print(f"no tracker database at {url.database}", file=sys.stderr)
        return 2
    metrics = compute(read_events(args.tracker_db_url),
                      excluded_forms=args.exclude_form or EXCLUDED_FORMS)
    metrics.ratings, note = fetch_ratings(args.shop_url, args.shop_token)
    metrics.desk, desk_note = fetch_desk_stats(args.shop_url, args.shop_token)
    metrics.risk, risk_note = fetch_risk_stats(args.shop_url, args.shop_token)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(metrics, url.render_as_string(hide_password=True), note,
                               desk_note=desk_note, risk_note=risk_note), encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics.as_dict(), indent=2), encoding="utf-8")
    print(f"report: {args.out} ({metrics.conversations} conversations, {metrics.turns} turns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

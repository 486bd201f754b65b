"""One self-contained HTML page (plots as embedded PNGs) from the report's numbers.

Self-contained on purpose: the file can be mailed, attached to a ticket or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from report.metrics import Metrics  # noqa: E402

MAX_INTENTS = 25


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _bar(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str = "",
         horizontal: bool = False, ylim: Optional[tuple] = None) -> str:
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(labels)) if horizontal else 3.2))
    if horizontal:
        ax.barh(list(labels)[::-1], list(values)[::-1], color="#4C72B0")
        ax.set_xlabel(xlabel)
    else:
        ax.bar(list(labels), list(values), color="#4C72B0")
        ax.set_ylabel(xlabel)
        if ylim:
            ax.set_ylim(*ylim)
    ax.set_title(title)
    return _png(fig)


def plots(m: Metrics) -> Dict[str, str]:
    """Base64 PNGs by name; a plot without data is left out."""
    out: Dict[str, str] = {}
    if m.intents:
        top = list(m.intents.items())[:MAX_INTENTS]
        out["intents"] = _bar([k for k, _ in top], [v for _, v in top], "Intents",
                              "user messages", horizontal=True)
    rates = [(name, value) for name, value in (
        ("flow completion", m.flow_completion_rate), ("fallback (turns)", m.fallback_rate),
        ("handoff (conversations)", m.handoff_rate)) if value is not None]
    if rates:
        out["rates"] = _bar([n for n, _ in rates], [v * 100 for _, v in rates], "Rates",
                            "%", ylim=(0, 100))
    if m.ratings and m.ratings.get("count"):
        dist = m.ratings["distribution"]
        out["ratings"] = _bar([f"{k}★" for k in sorted(dist)], [dist[k] for k in sorted(dist)],
                              f"Ratings (n={m.ratings['count']}, "
                              f"average {m.ratings['average']})", "ratings")
    if m.sentiment_by_turn:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        turns = [p["turn"] for p in m.sentiment_by_turn]
        ax.plot(turns, [p["mean"] for p in m.sentiment_by_turn], marker="o", color="#C44E52")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.axhline(-0.3, color="grey", linewidth=0.8, linestyle="--")
        ax.set_ylim(-1, 1)
        ax.set_xticks(turns)
        ax.set_xlabel("user message number in the conversation")
        ax.set_ylabel("mean compound score")
        ax.set_title("Sentiment over turns (below the dashed line: negative)")
        out["sentiment"] = _png(fig)
    return out


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def duration(seconds: Optional[float]) -> str:
    """A time span as a person reads it: "0.4 s", "45 s", "1 min 30 s", "2 h 5 min", "3 d 4 h"."""
    if seconds is None:
        return "n/a"
    seconds = max(0.0, float(seconds))
    if seconds < 59.95:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    minutes = round(seconds / 60)
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h" + (f" {rest} min" if rest else "")
    days, rest = divmod(round(seconds / 3600), 24)
    return f"{days} d" + (f" {rest} h" if rest else "")


def _times(d: Dict[str, Any], none: str) -> str:
    """ "median …, p90 … (n tickets)" of a ``Durations`` of GET /desk/stats."""
    count = d.get("count") or 0
    if not count:
        return f"n/a ({none})"
    return (f"median {duration(d.get('median_seconds'))}, p90 {duration(d.get('p90_seconds'))} "
            f"({count} ticket{'s' if count != 1 else ''})")


STATUSES = (("open", "Open (waiting for an agent)"), ("claimed", "Claimed (an agent has it)"),
            ("closed", "Closed"))
OUTCOMES = (("resolved", "Outcome: resolved"), ("unresolved", "Outcome: unresolved"),
            ("no_reply", "Outcome: no reply"))


def desk_rows(desk: Dict[str, Any]) -> List[List[Any]]:
    """The rows of the "Human handoffs (agent desk)" table from GET /desk/stats."""
    handoffs, outcomes = desk.get("handoffs") or {}, desk.get("outcomes") or {}
    rows: List[List[Any]] = [["Tickets", handoffs.get("total", 0)]]
    known = {key for key, _ in STATUSES} | {"total"}
    rows += [[label, handoffs.get(key, 0)] for key, label in STATUSES]
    rows += [[f"Status {key}", n] for key, n in handoffs.items() if key not in known]
    rows += [["Time to first claim",
              _times(desk.get("time_to_claim") or {}, "no ticket claimed yet")],
             ["Time to first agent reply",
              _times(desk.get("time_to_first_reply") or {}, "no agent reply yet")]]
    rows += [[label, outcomes.get(key, 0)] for key, label in OUTCOMES]
    rows += [[f"Outcome: {key}", n] for key, n in outcomes.items()
             if key not in {k for k, _ in OUTCOMES}]
    return rows


def _desk_section(desk: Optional[Dict[str, Any]], note: str) -> str:
    if desk is None:
        return ("<p class='none' id='desk'>The agent desk's numbers are unavailable "
                f"{html.escape(note or '(shop not asked)')}.</p>")
    since = desk.get("since")
    scope = f"tickets created since {since}" if since else "all tickets"
    return (f"<p>From the shop's <code>GET /desk/stats</code>, {html.escape(scope)}; times run "
            "from a ticket's creation to its first claim and to the first agent reply.</p>\n"
            f"<table id='desk'>{_rows(desk_rows(desk))}</table>")


RISK_OPERATIONS = ("cancel", "order-address", "payment", "items", "return", "exchange")
RISK_MODES = {"enforce": "enforce (a flagged change is not done; an agent reviews it)",
              "monitor": "monitor (a flagged change is logged and done anyway)"}
REVIEWS = (("pending", "Reviews pending"), ("approved", "Reviews approved"),
           ("rejected", "Reviews rejected"))


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def risk_rows(risk: Dict[str, Any]) -> Dict[str, List[List[Any]]]:
    """The tables of the "Risk control (order changes)" section from GET /risk/stats:
    ``summary`` (label, value), ``operations`` (operation, decisions, flagged, flag rate; the
    six of docs/risk.md first, "n/a" without decisions) and ``reasons`` (rule, decisions,
    flagged; only the rules that gave points, in the shop's order)."""
    decisions, reviews = risk.get("decisions") or {}, risk.get("reviews") or {}
    total, flagged = decisions.get("total", 0), decisions.get("flagged", 0)
    mode = str(risk.get("mode"))
    summary: List[List[Any]] = [
        ["Mode", RISK_MODES.get(mode, mode)],
        ["Threshold", f"{risk.get('threshold')} points"],
        ["Decisions", total],
        ["Allowed", decisions.get("allowed", 0)],
        ["Flagged (score at or over the threshold)", flagged],
        ["Refused (sent to an agent's review)", decisions.get("refused", 0)],
        ["Flag rate", f"{_pct(risk.get('flag_rate'))} ({flagged} of {_count(total, 'decision')})"
         if total else "n/a (no decisions)"],
    ]
    summary += [[label, reviews.get(key, 0)] for key, label in REVIEWS]
    summary += [[f"Reviews {key}", n] for key, n in reviews.items()
                if key not in {k for k, _ in REVIEWS}]
    per_operation = risk.get("operations") or {}
    names = list(RISK_OPERATIONS) + [op for op in per_operation if op not in RISK_OPERATIONS]
    operations = []
    for name in names:
        counts = per_operation.get(name) or {}
        operations.append([name, counts.get("total", 0), counts.get("flagged", 0),
                           _pct(counts.get("flag_rate") if counts.get("total") else None)])
    reasons = [[code, counts.get("decisions", 0), counts.get("flagged", 0)]
               for code, counts in (risk.get("reasons") or {}).items()
               if (counts or {}).get("decisions")]
    return {"summary": summary, "operations": operations, "reasons": reasons}


def _risk_section(risk: Optional[Dict[str, Any]], note: str) -> str:
    if risk is None:
        return ("<p class='none' id='risk'>The risk control's numbers are unavailable "
                f"{html.escape(note or '(shop not asked)')}.</p>")
    since = risk.get("since")
    scope = f"decisions since {since}" if since else "all decisions"
    tables = risk_rows(risk)
    quiet = [code for code, counts in (risk.get("reasons") or {}).items()
             if not (counts or {}).get("decisions")]
    reasons = (_rows(tables["reasons"]) if tables["reasons"]
               else "<tr><td colspan=3>no rule gave points</td></tr>")
    return (f"<p>From the shop's <code>GET /risk/stats</code>, {html.escape(scope)}. A decision "
            "is one order change the store's rules allowed, scored by the risk rules before it "
            "was done; flagged: its score reached the threshold (docs/risk.md).</p>\n"
            f"<table id='risk'>{_rows(tables['summary'])}</table>\n"
            "<table id='risk-operations'><tr><th>operation</th><th>decisions</th>"
            f"<th>flagged</th><th>flag rate</th></tr>{_rows(tables['operations'])}</table>\n"
            "<table id='risk-reasons'><tr><th>rule that gave points</th><th>decisions</th>"
            f"<th>flagged</th></tr>{reasons}</table>"
            + (f"\n<p class='none'>No points from: {html.escape(', '.join(quiet))}.</p>"
               if quiet else ""))


def _rows(rows: List[List[Any]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)


def render(m: Metrics, source: str, ratings_note: str = "", desk_note: str = "",
           risk_note: str = "") -> str:
    """The HTML page."""
    images = plots(m)

    def img(name: str) -> str:
        if name not in images:
            return "<p class='none'>No data.</p>"
        return f"<img alt='{name}' src='data:image/png;base64,{images[name]}'>"

    ratings = m.ratings or {}
    summary = [
        ["Conversations", m.conversations],
        ["Turns (user messages)", m.turns],
        ["Turns per conversation", m.turns_per_conversation],
        ["Flow completion rate",
         f"{_pct(m.flow_completion_rate)} ({m.completed_flow_conversations} of "
         f"{m.flow_conversations} conversations with a flow)"],
        ["Fallback rate", f"{_pct(m.fallback_rate)} ({m.fallback_turns} of {m.turns} turns)"],
        ["Handoff rate", f"{_pct(m.handoff_rate)} ({m.handoff_conversations} of "
                         f"{m.conversations} conversations)"],
        ["Human agent offered after negative messages", m.human_offers],
        ["Negative messages", _pct(m.negative_turn_share)],
        ["Ratings", f"{ratings.get('count', 0)}, average {ratings.get('average')}"
         if m.ratings is not None else f"unavailable {ratings_note}".strip()],
    ]
    flows = [[name, c["started"], c["completed"], c["abandoned"]] for name, c in m.flows.items()]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop assistant report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: .3em .7em; text-align: left; }}
img {{ max-width: 100%; display: block; margin: 1em 0; }} .none {{ color: #888; }}
</style></head><body>
<h1>Shop assistant report</h1>
<p>Generated {stamp} from <code>{html.escape(source)}</code>.
Definitions: see <code>docs/report.md</code>.</p>
<h2>Summary</h2>
<table id="summary">{_rows(summary)}</table>
<h2>Rates</h2>{img("rates")}
<h2>Flows</h2>
<table id="flows"><tr><th>form</th><th>started</th><th>completed</th><th>abandoned</th></tr>
{_rows(flows) if flows else "<tr><td colspan=4>none</td></tr>"}</table>
<h2>Intents</h2>{img("intents")}
<h2>Ratings</h2>{img("ratings")}
<h2>Human handoffs (agent desk)</h2>
{_desk_section(m.desk, desk_note)}
<h2>Risk control (order changes)</h2>
{_risk_section(m.risk, risk_note)}
<h2>Sentiment over turns</h2>{img("sentiment")}
</body></html>
"""

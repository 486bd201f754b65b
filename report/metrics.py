"""The numbers of the report, computed from the events of Rasa's SQL tracker store.

Why read the ``events`` table directly (SQLAlchemy, no Rasa import): the report must run on a
copy of a production database without loading a model or a domain, and one SELECT over the
events is far cheaper than rebuilding every tracker. Each row's ``data`` column is the event as
Rasa serialises it (``{"event": "user", "parse_data": {...}}``, ``{"event": "action", ...}``).

Definitions (also in docs/report.md):

- conversation: one ``sender_id``; turn: one user message.
- flow: the activation of a form other than the excluded ones (``rating_form``); it is
  *completed* when the form deactivates itself (``active_loop: null`` right after the form's own
  action, which is how Rasa ends a form whose slots are all filled), and *abandoned* when
  something else ends it (``action_deactivate_loop`` after "stop", a handoff...) or the
  conversation ends first. Flow completion rate = conversations with a completed flow /
  conversations with a flow.
- fallback rate: turns whose intent is ``nlu_fallback`` or that were answered by
  ``action_fallback`` / turns.
- handoff rate: conversations in which ``action_handoff`` ran / conversations.
- sentiment over turns: mean VADER compound score of the n-th user message of each conversation.

Three parts come from the shop, not from the tracker store (``report.__main__`` fetches them):
``ratings`` (``GET /ratings`` summary), ``desk`` (``GET /desk/stats``: handoff tickets per
status, time to first claim and to first agent reply, outcomes) and ``risk`` (``GET /risk/stats``:
the risk control's decisions on order changes, flag rates overall and per operation, counts per
rule, reviews of refused changes, mode and threshold; docs/risk.md); ``None`` when the shop could
not be asked.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional

import sqlalchemy as sa

FALLBACK_INTENTS = {"nlu_fallback"}
FALLBACK_ACTIONS = {"action_fallback"}
HANDOFF_ACTIONS = {"action_handoff"}
OFFER_ACTIONS = {"action_offer_human"}
EXCLUDED_FORMS = ("rating_form",)
MAX_SENTIMENT_TURNS = 20


@dataclass
class Metrics:
    """Everything the report shows (also written as JSON)."""

    conversations: int = 0
    turns: int = 0
    turns_per_conversation: float = 0.0
    intents: Dict[str, int] = field(default_factory=dict)
    flow_conversations: int = 0
    completed_flow_conversations: int = 0
    flow_completion_rate: Optional[float] = None
    flows: Dict[str, Dict[str, int]] = field(default_factory=dict)
    fallback_turns: int = 0
    fallback_rate: Optional[float] = None
    handoff_conversations: int = 0
    handoff_rate: Optional[float] = None
    human_offers: int = 0
    sentiment_by_turn: List[Dict[str, Any]] = field(default_factory=list)
    negative_turn_share: Optional[float] = None
    ratings: Optional[Dict[str, Any]] = None
    desk: Optional[Dict[str, Any]] = None
    risk: Optional[Dict[str, Any]] = None

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def read_events(url: str) -> Dict[str, List[Dict[str, Any]]]:
    """Every conversation's events in stored order, from the ``events`` table at ``url``."""
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("events"):
            return {}
        events = sa.table("events", sa.column("id"), sa.column("sender_id"), sa.column("data"))
        query = sa.select(events.c.sender_id, events.c.data).order_by(events.c.id)
        conversations: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        with engine.connect() as conn:
            for sender_id, data in conn.execute(query):
                try:
                    conversations[sender_id].append(json.loads(data))
                except (TypeError, ValueError):
                    continue  # a damaged row must not stop the report
        return dict(conversations)
    finally:
        engine.dispose()


def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def compute(
    conversations: Dict[str, List[Dict[str, Any]]],
    excluded_forms: Iterable[str] = EXCLUDED_FORMS,
    max_sentiment_turns: int = MAX_SENTIMENT_TURNS,
) -> Metrics:
    """The report's numbers for the given conversations (sender id -> events)."""
    excluded = set(excluded_forms)
    m = Metrics()
    intents: Counter = Counter()
    flows: Dict[str, Counter] = defaultdict(Counter)
    by_turn: Dict[int, List[float]] = defaultdict(list)
    negative_turns = scored_turns = 0

    for events in conversations.values():
        turns = 0
        fallback_turn = False  # the current turn was a fallback
        last_action: Optional[str] = None
        active: Optional[str] = None
        had_flow = completed_flow = handoff = False
        for event in events:
            kind = event.get("event")
            if kind == "user" and str(event.get("text") or "").startswith("EXTERNAL: "):
                continue  # a reminder Rasa triggered (the handoff wait), not a shopper's turn
            if kind == "user":
                m.fallback_turns += fallback_turn
                turns += 1
                parse = event.get("parse_data") or {}
                intent = (parse.get("intent") or {}).get("name") or "(none)"
                intents[intent] += 1
                fallback_turn = intent in FALLBACK_INTENTS
                sentiment = parse.get("sentiment")
                if isinstance(sentiment, dict) and isinstance(
                    sentiment.get("compound"), (int, float)
                ):
                    scored_turns += 1
                    negative_turns += sentiment.get("label") == "negative"
                    if turns <= max_sentiment_turns:
                        by_turn[turns].append(float(sentiment["compound"]))
            elif kind == "action":
                last_action = event.get("name")
                if last_action in FALLBACK_ACTIONS and turns:
                    fallback_turn = True
                handoff = handoff or last_action in HANDOFF_ACTIONS
                m.human_offers += last_action in OFFER_ACTIONS
            elif kind == "active_loop":
                name = event.get("name")
                if name:
                    if name != active and name not in excluded:
                        flows[name]["started"] += 1
                        had_flow = True
                    active = name
                elif active:
                    if active not in excluded:
                        outcome = "completed" if last_action == active else "abandoned"
                        flows[active][outcome] += 1
                        completed_flow = completed_flow or outcome == "completed"
                    active = None
            elif kind in ("restart", "session_started") and active:
                if active not in excluded:
                    flows[active]["abandoned"] += 1
                active = None
        m.fallback_turns += fallback_turn
        if active and active not in excluded:
            flows[active]["abandoned"] += 1  # still open when the conversation stopped
        if turns == 0:
            continue  # only session starts: nobody talked
        m.conversations += 1
        m.turns += turns
        m.flow_conversations += had_flow
        m.completed_flow_conversations += completed_flow
        m.handoff_conversations += handoff

    m.turns_per_conversation = round(m.turns / m.conversations, 2) if m.conversations else 0.0
    m.intents = dict(intents.most_common())
    m.flows = {name: {"started": c["started"], "completed": c["completed"],
                      "abandoned": c["abandoned"]} for name, c in sorted(flows.items())}
    m.flow_completion_rate = _rate(m.completed_flow_conversations, m.flow_conversations)
    m.fallback_rate = _rate(m.fallback_turns, m.turns)
    m.handoff_rate = _rate(m.handoff_conversations, m.conversations)
    m.negative_turn_share = _rate(negative_turns, scored_turns)
    m.sentiment_by_turn = [
        {"turn": turn, "mean": round(sum(values) / len(values), 4), "n": len(values)}
        for turn, values in sorted(by_turn.items())
    ]
    return m

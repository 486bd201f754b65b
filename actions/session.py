"""action_session_start: a conversation silent for ``session_expiration_time`` (domain.yml,
60 minutes) starts a new session in which nobody is identified any more.

Rasa's default would carry every slot over (``carry_over_slots_to_new_session``); an
identification, a change half-way through its read-back, or a pending request must not
outlive a shopper who walked away from a shared computer. What is kept is what protects or
serves the conversation: the failed-identification count, the open handoff ticket (and its
unsent write), whether the shopper already rated or was offered a human.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

KEPT_SLOTS = ("id_attempts", "handoff_ticket", "handoff_pending", "rating_done", "human_offered")


class ActionSessionStart(Action):
    """A new session: identification and every in-progress request end; KEPT_SLOTS stay."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[str, Any]) -> List[EventType]:
        kept = [SlotSet(name, tracker.slots.get(name)) for name in KEPT_SLOTS
                if tracker.slots.get(name) is not None]
        return [SessionStarted(), *kept, ActionExecuted("action_listen")]

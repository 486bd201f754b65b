"""action_fallback: out-of-scope or not understood -> a polite reply that says what we can do.

Never silence. A message that carries an order id ("what about W7824724" when the NLU was
unsure of the intent) is answered as an order-status question (identification still applies).
The seam for grounded free-form answers is :func:`grounded_reply`: it returns
None today; wiring ``actions.llm`` in is the lead's call (see its docstring), and nothing else
in this action changes when it does.
"""

from __future__ import annotations

import logging
from typing import Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import DomainDict, Events, latest_entity, latest_intent, latest_text, run_safely
from actions.orders import order_status
from actions.shop_client import find_order_id

logger = logging.getLogger(__name__)


def grounded_reply(question: str, tracker: Tracker) -> Optional[str]:
    """A grounded answer to a free-form question, or None to use the canned reply.

    To enable the LLM answers, replace the body with e.g.::

        from actions.llm import format_reply, grounded_answer
        answer = grounded_answer(question)
        return format_reply(answer) if answer.kind != "error" else None

    (keep it fast: the action server call has a timeout, and the shopper is waiting).
    """
    return None


class ActionFallback(Action):
    """Replies to what the assistant cannot handle, and says what it can do."""

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        question = latest_text(tracker)
        if latest_entity(tracker, "order_id") or find_order_id(question):
            # a message with an order id is about that order, even if the intent was unclear
            return await run_safely(
                self.name(), lambda: order_status(dispatcher, tracker, domain), dispatcher, domain
            )
        reply = None
        if question and not question.startswith("/"):
            try:
                reply = grounded_reply(question, tracker)
            except Exception:  # noqa: BLE001 - fall back to the canned reply, never silence
                logger.exception("grounded reply failed")
        if reply:
            dispatcher.utter_message(text=reply)
        elif latest_intent(tracker) == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
        else:
            dispatcher.utter_message(response="utter_default")
        return []

"""SentimentEscalationPolicy: offer a human agent to a shopper who is upset twice in a row.

Why a policy and not rules: rules match intents and slots of a fixed number of turns; "the last
two user messages were both strongly negative, and we have not offered yet during this streak"
is a condition on the history of message *properties*. The sentiment comes from the NLU
(``addons.sentiment.SentimentAnalyzer`` stores ``parse_data["sentiment"]`` on each
``UserUttered``), so this policy needs no training data.

Behaviour (each step with confidence 1.0, otherwise it abstains with all-zero probabilities):

- right after a user message, when the last ``consecutive`` (2) user messages of the session were
  all strongly negative and neither the offer nor a handoff happened since the streak began:
  predict ``action`` (``action_offer_human``);
- right after *this policy's* offer: predict ``action_listen`` (the offer asks a question), so
  no rule is needed to stop after it.

Its priority (5) is above RulePolicy's (4), so at equal confidence it wins over a rule. It
abstains when the latest intent is one the rules already answer with a human
(``request_human``), and, if configured, while a form is active.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional

from rasa.core.constants import RULE_POLICY_PRIORITY
from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from addons._component import ConfigDefaults

logger = logging.getLogger(__name__)

# Executed by Rasa itself between a user message and the next prediction; not "a reply".
_BOOKKEEPING_ACTIONS = {"action_extract_slots"}


def session_events(tracker: DialogueStateTracker) -> List[Event]:
    """Events of the current session, without reverted ones.

    Not ``tracker.applied_events()``: that drops the user messages answered inside a form,
    and a streak of upset messages during a form must count.
    """
    events: List[Event] = []
    for event in tracker.events:
        if isinstance(event, (Restarted, SessionStarted)):
            events = []
        elif isinstance(event, (UserUtteranceReverted, ActionReverted)):
            wanted = UserUttered if isinstance(event, UserUtteranceReverted) else ActionExecuted
            for index in range(len(events) - 1, -1, -1):
                if isinstance(events[index], wanted):
                    del events[index:]
                    break
        else:
            events.append(event)
    return events


def sentiment_of(event: UserUttered) -> Dict[str, Any]:
    """The ``sentiment`` the NLU stored in the message's parse data (empty if none)."""
    value = (event.parse_data or {}).get("sentiment")
    return value if isinstance(value, dict) else {}


def is_strongly_negative(event: UserUttered, threshold: float) -> bool:
    """The component's flag; the compound score against ``threshold`` when the flag is absent."""
    sentiment = sentiment_of(event)
    if "strongly_negative" in sentiment:
        return bool(sentiment["strongly_negative"])
    compound = sentiment.get("compound")
    return isinstance(compound, (int, float)) and compound <= threshold


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=False
)
class SentimentEscalationPolicy(ConfigDefaults, Policy):
    """Predicts the human-agent offer after a streak of strongly negative messages."""

    # names and limits are configurable so the domain can evolve without code changes
    DEFAULTS = {
        "priority": RULE_POLICY_PRIORITY + 1,
        # the action that offers a human agent
        "action": "action_offer_human",
        # after any of these (or the offer) the current streak needs no new offer
        "handoff_actions": ["action_handoff"],
        # strongly negative user messages in a row that trigger the offer
        "consecutive": 2,
        # used only when a message's sentiment has no `strongly_negative` flag
        "strong_negative_threshold": -0.5,
        # intents the rules already answer with a human agent
        "ignore_intents": ["request_human"],
        # offer also while a form is active (the form resumes if the shopper declines)
        "during_active_loop": True,
    }

    def __init__(self, config: Dict[str, Any], *args: Any, **kwargs: Any) -> None:
        """Merges the defaults, since `load` passes only what config.yml set."""
        super().__init__(self.with_defaults(config), *args, **kwargs)
        self.action = str(self.config["action"])
        self.handoff_actions = set(self.config["handoff_actions"] or [])
        self.consecutive = max(1, int(self.config["consecutive"]))
        self.threshold = float(self.config["strong_negative_threshold"])
        self.ignore_intents = set(self.config["ignore_intents"] or [])
        self.during_active_loop = bool(self.config["during_active_loop"])

    def train(
        self,
        training_trackers: List[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """Nothing to learn; the config is persisted so the model's resource exists."""
        if self.action not in domain.action_names_or_texts:
            logger.warning(
                "SentimentEscalationPolicy: action '%s' is not in the domain; "
                "it will never be predicted.", self.action,
            )
        with self._model_storage.write_to(self._resource) as path:
            (path / "sentiment_escalation.json").write_text(
                json.dumps({k: v for k, v in self.config.items() if k != "priority"},
                           sort_keys=True, default=list)
            )
        return self._resource

    # ------------------------------------------------------------------ decisions

    def next_action(self, tracker: DialogueStateTracker) -> Optional[str]:
        """The action this policy insists on now, or None to abstain."""
        events = session_events(tracker)
        last_action: Optional[ActionExecuted] = None
        last_action_index = -1
        last_user_index = -1
        for index, event in enumerate(events):
            if isinstance(event, UserUttered):
                last_user_index = index
            elif (isinstance(event, ActionExecuted)
                  and event.action_name not in _BOOKKEEPING_ACTIONS):
                last_action, last_action_index = event, index
        if last_user_index < 0:
            return None

        if last_action_index > last_user_index:
            # our own offer asked a question: wait for the answer
            if (last_action is not None and last_action.action_name == self.action
                    and last_action.policy == self.__class__.__name__):
                return ACTION_LISTEN_NAME
            return None

        latest: UserUttered = events[last_user_index]  # type: ignore[assignment]
        if (latest.intent or {}).get("name") in self.ignore_intents:
            return None
        if not self.during_active_loop and tracker.active_loop_name:
            return None

        streak_start = None
        streak = 0
        for index in range(last_user_index, -1, -1):
            event = events[index]
            if not isinstance(event, UserUttered):
                continue
            if not is_strongly_negative(event, self.threshold):
                break
            streak += 1
            streak_start = index
        if streak < self.consecutive or streak_start is None:
            return None
        already = {self.action} | self.handoff_actions
        for event in events[streak_start:]:
            if isinstance(event, ActionExecuted) and event.action_name in already:
                return None  # offered (or handed off) during this streak: don't nag
        return self.action

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """1.0 for the chosen action, or all zeros (abstain)."""
        probabilities = self._default_predictions(domain)
        action = self.next_action(tracker)
        if action is not None:
            if action in domain.action_names_or_texts:
                probabilities[domain.index_for_action(action)] = 1.0
            else:
                logger.warning("SentimentEscalationPolicy: '%s' not in the domain", action)
        return self._prediction(probabilities)

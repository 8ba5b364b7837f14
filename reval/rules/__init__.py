"""The rule table and its engine: pure, no framework, database or clock."""

from reval.rules.engine import Decision, Explanation, RuleEngine
from reval.rules.facts import DoctorSituation, PlacementSpan, ProgrammeSpan, TisPersonView
from reval.rules.table import (
    DEFAULT_RULE_TABLE,
    HIDDEN_BY_ADMIN,
    SHOULD_NOT_BE_CONNECTED,
    Audience,
    Queue,
    Ready,
    RuleTable,
)

__all__ = [
    "DEFAULT_RULE_TABLE",
    "HIDDEN_BY_ADMIN",
    "SHOULD_NOT_BE_CONNECTED",
    "Audience",
    "Decision",
    "DoctorSituation",
    "Explanation",
    "PlacementSpan",
    "ProgrammeSpan",
    "Queue",
    "Ready",
    "RuleEngine",
    "RuleTable",
    "TisPersonView",
]

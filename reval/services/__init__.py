"""The use cases people start, whatever they start them from: the command, the web, the API, a task.

Each takes a ``Context`` (who acts, with which designated bodies, on which clock, with which
gateway to GMC, TIS and the workers), opens its own transaction, and raises a typed refusal
(``reval.refusals``) when it will not act. No Flask, Celery or Click here.
"""

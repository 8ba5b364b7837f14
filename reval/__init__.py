"""Reval: keeps trainee doctors' GMC prescribed connections in step with TIS."""


def __getattr__(name):
    # ``create_app`` is found here by Flask, without making every ``import reval.rules`` load Flask.
    if name == "create_app":
        from reval.app import create_app

        return create_app
    raise AttributeError(name)

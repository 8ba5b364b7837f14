"""``reval`` and ``python -m reval``: the command, imported only when it runs.

The console script imports this module, not ``reval.cli``: a sync's helper process is a fresh
interpreter that re-imports the script's module (multiprocessing's spawn does), and it should not
pay for the whole command (Flask, Celery, zeep, Authlib) before it can take work.
"""


def main() -> None:
    from reval.cli import main as run_command

    run_command()


if __name__ == "__main__":
    main()

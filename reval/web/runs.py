"""Sync runs: how recent nights went, one run's detail, and starting a run now."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from reval.services.runs import get_run, list_runs, run_rejections, run_view, start_nightly_run
from reval.web.auth import signed_in_actor
from reval.web.pages import web_context

blueprint = Blueprint("run_pages", __name__)
RUNS_SHOWN = 30


@blueprint.get("/runs")
def runs() -> str:
    views = [run_view(run) for run in list_runs(web_context(), RUNS_SHOWN)]
    return render_template("runs/runs.html", runs=views, may_start=signed_in_actor().national)


@blueprint.get("/runs/<int(max=2147483647):run_id>")
def run(run_id: int) -> str:
    context = web_context()
    view = run_view(get_run(context, run_id))
    rejections = run_rejections(context, run_id).records if signed_in_actor().national else None
    return render_template("runs/run.html", run=view, rejections=rejections)


@blueprint.post("/runs")
def start() -> ResponseReturnValue:
    run_id = start_nightly_run(web_context())
    return redirect(url_for("run_pages.run", run_id=run_id), 303)

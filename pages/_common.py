"""Shared Streamlit plumbing of the dashboard pages (not a page itself: app.py uses
``st.navigation``, so files in pages/ are only pages when app.py lists them).

Environment:
    OPTIPOLY_DB        database path (default ``var/optipoly.db`` under the repository)
    OPTIPOLY_PRESET    simulation preset of the demo campaign (default ``quick``; tests: smoke)
    OPTIPOLY_CAMPAIGN  campaign opened first (default ``demo``)
    OPTIPOLY_RUNNER    ``0`` to never start the runner process from the dashboard (tests)
    OPTIPOLY_LIVE_S    polling period of live panels in seconds (default 2)
    OPTIPOLY_ALLOW_PROFILE_EDITING  ``1`` to let the browser edit cluster profiles (off by
                       default: a profile's prologue runs on the cluster;
                       core.execution.cluster_profiles)
    OPTIPOLY_JOBQUEUE_YAML  file of named cluster profiles (default ~/.config/dask/jobqueue.yaml)
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.config import DEFAULT_PRESET, default_db_path
from core.store import CampaignNotFound, Store, StoreError, StoreUnavailable
from core.ui.views import escape_markdown, markdown_code

REPO = Path(__file__).resolve().parents[1]
ACTOR = "dashboard"
_LOG = logging.getLogger("optipoly.dashboard")


def show_error(what: str, err: BaseException) -> None:
    """Tell the user ``what`` failed and why in one line (no traceback in the browser; the
    message shown literally, e.g. a polymer SMILES with its ``*``) and write the full
    traceback to the server's log."""
    _LOG.error("%s: %s: %s", what, type(err).__name__, err, exc_info=err)
    st.error(f"{esc(what)}: {type(err).__name__}: {esc(err)}")


def page_ctx() -> Ctx:
    """The context app.py put in the session. A page script can also be started directly by
    Streamlit's legacy pages/ mode (first request of a fresh server on a page URL, e.g. a tab
    left open across a restart); then switch the server to app.py's ``st.navigation`` and
    rerun, so the request is served through app.py like any other."""
    ctx = st.session_state.get("_ctx")
    if ctx is None:
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
        st.rerun()
    return ctx


def db_path() -> Path:
    """The campaign database: ``$OPTIPOLY_DB`` or ``var/optipoly.db`` under the repository."""
    return default_db_path()


def preset() -> str:
    return os.environ.get("OPTIPOLY_PRESET", DEFAULT_PRESET)


def default_campaign() -> str:
    return os.environ.get("OPTIPOLY_CAMPAIGN", "demo")


def live_period_s() -> float:
    try:
        return max(0.5, float(os.environ.get("OPTIPOLY_LIVE_S", "2")))
    except ValueError:
        return 2.0


@st.cache_resource(show_spinner=False)
def get_store(path: str) -> Store:
    """One Store object per database path per server process (it opens short connections)."""
    return Store(path)


@st.cache_resource(show_spinner="Preparing the demo campaign …")
def _ensure_demo(path: str, preset_name: str, name: str) -> str:
    from core.campaign.demo import ensure_demo_campaign

    ensure_demo_campaign(path, preset=preset_name, name=name)
    return name


_RUNNER_CHECKED: dict[tuple[str, str], float] = {}


def _ensure_runner(path: str, campaign: str, every_s: float = 15.0) -> None:
    """Start the campaign's runner if its heartbeat is stale (checked at most every 15 s per
    server process, so reruns do not spawn processes while a new runner boots)."""
    if os.environ.get("OPTIPOLY_RUNNER", "1") == "0":
        return
    now = time.monotonic()
    if now - _RUNNER_CHECKED.get((path, campaign), -1e9) < every_s:
        return
    _RUNNER_CHECKED[(path, campaign)] = now
    from core.campaign.bundle import runner_wanted
    from core.execution.runner import ensure_runner

    if not runner_wanted(get_store(path), campaign):  # a shipped campaign is shown as it is
        return
    ensure_runner(path, campaign)


@dataclass
class Ctx:
    store: Store
    campaign: str
    db: str


def bootstrap() -> Ctx:
    """Open the store, make sure the demo campaign exists and the runner of the selected
    campaign runs (started if its heartbeat is stale), pick the campaign from the sidebar."""
    path = str(db_path())
    try:
        store = get_store(path)
    except StoreUnavailable as err:  # not a database, damaged, a directory …: say which file
        _LOG.error("store unavailable: %s", err)
        st.title("Optical polymer discovery")
        st.error(esc(err))
        st.stop()
    camp_default = default_campaign()
    try:
        store.get_campaign(camp_default)
    except CampaignNotFound:  # not there yet: create the demo
        if camp_default == "demo" or not _campaign_names(store):
            try:
                _ensure_demo(path, preset(), camp_default)
            except Exception as err:  # noqa: BLE001 - shown to the user, app keeps working
                show_error("Could not prepare the demo campaign", err)
    names = _campaign_names(store)
    if not names:
        st.title("Optical polymer discovery")
        st.error(f"The store {esc(path)} has no campaign and the demo campaign could not be "
                 "created (see above). Create one with `python -m core.campaign new NAME "
                 "--initial FILE` and reload this page.")
        st.stop()
    campaign = campaign_from_url(names, camp_default)
    if names:
        try:
            _ensure_runner(path, campaign)
        except Exception as err:  # noqa: BLE001 - UI boundary: shown, the page keeps working
            st.warning(f"Runner not started: {type(err).__name__}: {esc(err)}")
    return Ctx(store=store, campaign=campaign, db=path)


URL_CAMPAIGN = "campaign"  # the query parameter: /jobs?campaign=NAME reopens that view


def campaign_from_url(names: list[str], default: str) -> str:
    """The campaign of this run, kept in the URL so a link reopens the same view.

    The page is the URL's path (``st.navigation``: ``/jobs``, ``/batch`` …); the campaign is
    the query parameter ``?campaign=NAME``.  A name in the URL that the store knows wins when
    the session has no campaign yet (a link opened) or the URL changed since this session last
    wrote it (back / forward); otherwise the session's choice (the sidebar picker) stands and
    is written to the URL.  An unknown name is reported and replaced.
    """
    asked = st.query_params.get(URL_CAMPAIGN)
    written = st.session_state.get("_campaign_in_url")
    if asked and asked in names and ("campaign" not in st.session_state or asked != written):
        st.session_state["campaign"] = asked
    elif asked and asked not in names and asked != written:
        st.warning(f"There is no campaign {code(asked)} in this store; showing another one.")
    if st.session_state.get("campaign") not in names:
        st.session_state["campaign"] = default if default in names else names[0]
    campaign = str(st.session_state["campaign"])
    if st.query_params.get(URL_CAMPAIGN) != campaign:
        st.query_params[URL_CAMPAIGN] = campaign
    st.session_state["_campaign_in_url"] = campaign
    return campaign


def campaign_names(store: Store) -> list[str]:
    """Names of the store's campaigns (none when the database cannot be read)."""
    return _campaign_names(store)


def _campaign_names(store: Store) -> list[str]:
    try:
        df = store.list_campaigns()
    except StoreError:  # a database that cannot be read: no campaigns to offer
        return []
    return [str(n) for n in df["name"]] if len(df) else []


def sidebar(ctx: Ctx) -> None:
    """Campaign picker, live-update toggle and runner heartbeat in the sidebar."""
    names = _campaign_names(ctx.store)
    with st.sidebar:
        if names:
            st.selectbox("Campaign", names, key="campaign")
        st.toggle("Live updates", value=True, key="live",
                  help="Poll the store every few seconds; switch off to freeze the view.")
        try:
            rs = ctx.store.runner_status(ctx.campaign)
        except StoreError:  # a database that cannot be read: shown as "no runner"
            rs = None
        if rs is None:
            st.caption("Runner: not started yet")
        elif rs.get("alive"):
            st.badge("runner alive", icon=":material/check_circle:", color="green")
            st.caption(f"pid {rs.get('pid')} · heartbeat {rs['age_s']:.0f} s ago")
        else:
            st.badge(f"runner {rs.get('status') or 'silent'}", icon=":material/error:",
                     color="red")
            st.caption(f"last heartbeat {rs['age_s']:.0f} s ago")
        st.caption(f"Database: {markdown_code(Path(ctx.db).name)}")


def live_every() -> float | None:
    """run_every for fragments: the polling period, or None when the user paused updates."""
    return live_period_s() if st.session_state.get("live", True) else None


def config(ctx: Ctx) -> dict[str, Any]:
    return dict(ctx.store.get_campaign(ctx.campaign)["config"])


def require_optical_objectives(cfg: dict[str, Any]) -> None:
    """Stop the page with a clear message unless the campaign optimises n_D and abbe_number."""
    objs = set(cfg.get("objectives") or [])
    if objs != {"n_D", "abbe_number"}:
        st.error(f"This page plots n_D against ν_D; the campaign's objectives are "
                 f"{esc(sorted(objs))}.")
        st.stop()


def limit_line(cfg: dict[str, Any]):
    from core.chem.optics import LimitLine, load_default_limit_line

    if cfg.get("limit_line"):
        return LimitLine.from_dict(cfg["limit_line"])
    return load_default_limit_line()


@st.cache_data(show_spinner=False)
def reference_polymers() -> pd.DataFrame:
    from core.chem.optics import load_reference_polymers

    return load_reference_polymers()


def svg_html(svg: str, width: int | None = None) -> str:
    """Inline SVG markup in a fixed-size div (SVG from RDKit: no user text inside), on white
    with rounded corners: RDKit's black bonds stay readable under the dark theme."""
    style = f"width:{width}px;" if width else ""
    return (f'<div style="{style}line-height:0;background:#fff;border-radius:6px;'
            f'display:inline-block">{svg}</div>')


def esc(text: Any) -> str:
    """``text`` escaped for Streamlit Markdown (st.markdown / error / warning / caption /
    toast / success / info): shown literally, so a polymer SMILES ``*C(*)(F)Cl`` keeps its
    asterisks and ``[N+](=O)`` is no link (:func:`core.ui.views.escape_markdown`).  Not for
    code spans: use :func:`code` there."""
    return escape_markdown(text)


def code(text: Any) -> str:
    """``text`` as an inline code span (monospace, literal), e.g. a polymer SMILES or a
    user's SMARTS pattern inside a sentence (:func:`core.ui.views.markdown_code`)."""
    return markdown_code(text)


def structure_column(label: str = "structure", width: str = "small"):
    return st.column_config.ImageColumn(label, width=width, help="repeat unit (RDKit)")

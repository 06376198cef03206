"""`dockyard dashboard`: open the server's web dashboard, logged in, in a browser.

The server gives a one-time login link for the CLI's own token (`Client.dashboard_link`): on a
local server nobody types a token. `--url` only prints the link (another machine's browser, a
script). The link works once, for two minutes; the browser then holds a session cookie.
"""

from __future__ import annotations

import webbrowser
from collections.abc import Callable

from dockyard.cli.render import note, write_stdout
from dockyard.client.api import Client


def run_dashboard(client_factory: Callable[[], Client], *, url_only: bool,
                  opener: Callable[[str], bool] | None = None) -> None:
    """Open (or with `url_only` print) a one-time login link; `opener` defaults to the
    system's browser (`webbrowser.open`, which $BROWSER can name)."""
    with client_factory() as client:
        link = client.dashboard_link()
    if url_only:
        write_stdout(link)
        return
    if (opener or webbrowser.open)(link):
        note(f"opened the dashboard of {link.split('/login/')[0]} in your browser")
        return
    note("no browser could be opened here; open this link (it works once, for 2 minutes):")
    write_stdout(link)

"""The Dash app and its JSON API, on one Flask server.

    python app/app.py [--model DIR_OR_HUB_ID ...] [--runs outputs] [--non_toxic_label NAME]
                      [--quantize int8] [--max_length TOKENS] [--host 127.0.0.1] [--port 8050]
    TOXIC_RUNS=outputs gunicorn -w 2 --threads 4 --timeout 120 -b 127.0.0.1:8050 'app.app:server'

Models load once, when this module is imported; the flags only set the environment variables that
app/config.py reads, because gunicorn imports this module without any flags.
"""

# ruff: noqa: E402  (the import path is fixed before the project's packages are imported)

import sys
from pathlib import Path

# `python app/app.py` puts app/ first on the import path, where this file would shadow the `app`
# package; put the repository root there instead, so `import app.x` and `import distill` resolve.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import logging
import os

import dash
import dash_bootstrap_components as dbc
import transformers
from dash import Dash, html

from app import registry
from app.api import register_api
from app.config import AppConfig, parse_args
from distill.errors import UserError

logger = logging.getLogger("app")

if __name__ == "__main__":
    options = parse_args()
    os.environ.update(options.config.to_env())

logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
transformers.utils.logging.disable_progress_bar()  # one line per model, from app.registry, is enough
try:
    models = registry.load_registry(AppConfig.from_env())
except UserError as err:
    logger.error("Not starting: %s", err)
    # Exit status 4 is gunicorn's "App failed to load", which stops the master instead of respawning.
    sys.exit(4 if "gunicorn" in sys.modules else 2)
registry.install(models)

# Bootstrap's CSS comes from app/assets/bootstrap.min.css, the 5.3.6 build that dbc.themes.BOOTSTRAP
# names on a CDN: served by the app itself, the pages look right offline and call no third party.
app = Dash(__name__, use_pages=True, title="Toxic comment classifier")
app.layout = html.Div(
    [
        dbc.NavbarSimple(
            [
                dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"]))
                for page in dash.page_registry.values()
            ],
            brand="Toxic comment classifier",
            brand_href="/",
            color="dark",
            dark=True,
        ),
        dash.page_container,
    ]
)
server = app.server
register_api(server, models)

if __name__ == "__main__":
    app.run(host=options.host, port=options.port, debug=False)

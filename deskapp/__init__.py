"""deskapp: the keyboard-first order desk (the app, its screens, services and the CLI)."""

import os

# Textual repaints a changed screen on its next update tick, at most TEXTUAL_FPS a second; at the
# default 60 a new result list waited 0–17 ms (plus an idle turn) for its tick — a third of the
# typing → results time. The tick only runs while something is dirty, so a faster one costs
# nothing at rest. Read when textual.constants is first imported: set before any textual import.
os.environ.setdefault("TEXTUAL_FPS", "240")

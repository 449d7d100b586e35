"""The WSGI entry point: ``gunicorn wsgi:app``. The only module-level app.

Each gunicorn worker imports this module, so what happens here happens once per worker.
"""

import gc

from comments import create_app
from moderation.scoring import warm

app = create_app()
warm(app)  # the classifier in memory before the first post, not during it
# All that is loaded now lives as long as the worker. Frozen, it is left out of the garbage
# collector's full passes, which otherwise walk ~170,000 long-lived objects (the models,
# SQLAlchemy's mappings, Flask, the classifier's tables) in the middle of some request: a
# 15-70 ms stall, felt as the slowest 1% of requests.
gc.collect()
gc.freeze()

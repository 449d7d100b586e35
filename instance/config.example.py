# Copy to instance/config.py and edit. Every key can also be set with an environment
# variable prefixed PARLEY_ (PARLEY_SECRET_KEY, PARLEY_DATABASE_URL, ...), which wins.

# "production" refuses to start with the default secret key and marks cookies Secure.
ENV = "production"

# A long random string: python -c "import secrets; print(secrets.token_urlsafe(48))"
SECRET_KEY = None  # required in production

# Default: a SQLite file in this folder. PostgreSQL (psycopg 3):
# DATABASE_URL = "postgresql://parley:password@db.internal:5432/parley"

# Comments
COMMENT_MAX_LENGTH = 5000      # characters, after trimming
COMMENT_MAX_DEPTH = 6          # deeper replies attach to the deepest allowed ancestor
EDIT_WINDOW_MINUTES = 15
PER_PAGE_DEFAULT = 20          # top-level comments per page (max 100)
AUTO_CLOSE_DAYS = None         # close threads N days after registration; per-article override
MAX_CONTENT_LENGTH = 65536     # bytes; larger request bodies get 413

"""What many test modules share, one module per kind of thing: the project folder (project.py),
the `syndicate` command in this process or in a real one (cli.py), a real SMTP server (smtp.py),
the web app under uvicorn (web.py), headless Chromium (browser.py), waiting (waiting.py),
subscriber list files (lists.py) and a database built by Alembic's revisions (revisions.py)."""

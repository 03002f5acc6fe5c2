"""What many test modules share, one module per kind of thing.

- Running things: the project folder (project.py), the `syndicate` command in this process or in
  a real one (cli.py), the way an MTA runs it (pipe.py), a real SMTP server (smtp.py), a private
  Postfix (postfix.py), the web app under uvicorn and HTTP stand-ins (web.py), headless Chromium
  (browser.py), waiting for a condition (waiting.py), the rule for a missing tool (tools.py).
- Databases: PostgreSQL per test (postgres.py), one built by Alembic's revisions (revisions.py).
- Per area: subscriber list files (lists.py), the reader edition (edition.py), the column
  (column.py), delivery faults and bulk lists (delivery.py), scheduling (scheduling.py), replies
  (inbound.py), hostile mail (hostile_mail.py), the web app's client and keys (web_client.py),
  the author's desk (desk.py).
"""

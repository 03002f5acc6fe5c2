"""Replies by email: every inbound message, whatever its entrance, runs one pipeline.

parse → identify → bounce → autoreply → unsubscribe → text → file → forward, one module per step
(see pipeline.py). Entrances: stdin (an MTA pipe), imap, maildir and sendgrid (Inbound Parse).
"""

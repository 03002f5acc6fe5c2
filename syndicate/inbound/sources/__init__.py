"""Where inbound mail comes in; each entrance hands the bytes to `pipeline.process` and tells its
sender what became of them in its own terms (an exit status, an IMAP flag, an HTTP status).

stdin: an MTA pipe or alias (`syndicate inbound receive`), which hands the message to the
daemon when it listens (handover); lmtp: the daemon's LMTP socket; imap: a mailbox polled by
UID; maildir: a folder an MTA delivers into; sendgrid: SendGrid Inbound Parse, posted to the
web app.
"""

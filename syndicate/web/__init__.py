"""The web app: public pages, webhooks and their guards."""

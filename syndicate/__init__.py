"""syndicate: from a columnist's blog feed to readers' and editors' inboxes, and back."""

__version__ = "0.1.0"

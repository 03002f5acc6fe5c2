"""When sends go: the times authors type, channel policies, the embargo rule, the author's
control, approvals and the daemon."""

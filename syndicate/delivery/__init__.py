"""Sending: plan, claim and record deliveries, compose each message, sign it, hand it to a
transport."""

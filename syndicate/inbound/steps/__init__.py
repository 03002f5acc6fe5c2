"""The inbound steps, one module each, run in the order of `pipeline.PIPELINE`.

Every module here has one `process(message: MessageContext) -> None`. The steps from `identify`
to `comment` only read and decide (the first to classify the message ends the deciding, and
`syndicate inbound classify` runs just those); `file` records and acts in one transaction;
`forward` does what waits for the commit.
"""

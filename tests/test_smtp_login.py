"""SMTP login: the password comes from the environment, a refusal is one clear error."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from syndicate.delivery.transports.smtp import SmtpTransport
from syndicate.errors import TransportError
from syndicate.models import DeliveryState
from syndicate.settings import Smtp
from tests.conftest import RecordingHandler, free_port
from tests.support.delivery import note

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _check(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"apikey",
        b"s3cret",
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_server():
    # A plain-text AUTH server is fine on 127.0.0.1; TLS itself is covered by smtplib.
    handler = RecordingHandler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_check,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def _config(port: int) -> Smtp:
    return Smtp(host="127.0.0.1", port=port, security="none", username="apikey", connections=1)


def test_login_then_send(auth_server) -> None:
    controller, handler = auth_server
    transport = SmtpTransport(_config(controller.port), "s3cret")
    with transport:
        [result] = transport.send_messages([note("ann@example.org")])
    assert result.state is DeliveryState.SENT
    assert [m.rcpt_tos for m in handler.messages] == [["ann@example.org"]]


def test_wrong_password_names_the_setting_and_the_variable(auth_server) -> None:
    controller, handler = auth_server
    transport = SmtpTransport(_config(controller.port), "wrong")
    with pytest.raises(TransportError) as caught:
        transport.open()
    assert "SMTP login as 'apikey'" in str(caught.value)
    assert "$SYNDICATE_SMTP_PASSWORD" in str(caught.value)
    assert handler.messages == []

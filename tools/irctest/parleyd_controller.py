"""irctest controller for Parley's parleyd.

Writes a config for the host and port irctest picks (no lobby: irctest
expects a client in no channel after registration; no file store), starts
the `parleyd` found on PATH, and waits until it answers. The operator
irctest uses (`operuser` / `operpassword`) is the first-run administrator,
named through the config and given its password through the environment.
Tests that make time pass (LIST's C and T filters) run the server under
libfaketime's `faketime`; without it they are skipped, as they would
otherwise wait minutes of real time.
"""

import atexit
import os
import shutil
import subprocess
from typing import Optional, Set

from irctest.basecontrollers import (
    BaseServerController,
    DirectoryBasedController,
    NotImplementedByController,
)

TEMPLATE_CONFIG = """
server_name = "My.Little.Server"
network = "testnet"
description = "test server"
motd = ["irctest"]

[irc]
listen = [{listen}]
tls_listen = [{tls_listen}]
lobby = "#lobby"
auto_join = []
{password_field}

[tls]
cert = "{pem_path}"
key = "{key_path}"

[files]
listen = []

[admin]
default_name = "operuser"

[accounts]
register_before_connect = {before_connect}
{verify_command}

[limits]
flood_burst = 1000000
flood_lines_per_second = 1000000.0
nick_len = 32
max_connections_per_ip = 1000
"""


class ParleydController(BaseServerController, DirectoryBasedController):
    software_name = "Parley"
    supported_sasl_mechanisms: Set[str] = {"PLAIN", "SCRAM-SHA-256"}
    supports_sts = False

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        # Accounts are built in: "services" need nothing more to run.
        faketime_cmd = []
        if faketime:
            if not shutil.which("faketime"):
                raise NotImplementedByController("faketime (install libfaketime)")
            faketime_cmd = ["faketime", "-f", faketime]
            self.faketime_enabled = True
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        self.gen_ssl()
        address = '"{}:{}"'.format(hostname, port)
        with self.open_file("parleyd.toml") as fd:
            fd.write(
                TEMPLATE_CONFIG.format(
                    listen="" if ssl else address,
                    tls_listen=address if ssl else "",
                    password_field='password = "{}"'.format(password) if password else "",
                    pem_path=self.pem_path,
                    key_path=self.key_path,
                    before_connect=str(self.test_config.account_registration_before_connect).lower(),
                    # Verification needs a way to deliver codes: `true`
                    # delivers them nowhere, which is all the tests need.
                    verify_command='verify_command = "true"'
                    if self.test_config.account_registration_requires_email
                    else "",
                )
            )
        assert self.directory
        env = dict(os.environ, PARLEY_ADMIN_PASSWORD="operpassword")
        self.proc = self.execute(
            [
                *faketime_cmd,
                "parleyd",
                "--config",
                self.directory / "parleyd.toml",
                "--data-dir",
                self.directory / "data",
            ],
            env=env,
        )
        atexit.register(self._kill_leftover)

    def _kill_leftover(self) -> None:
        """Stops a server still running when the pytest worker exits. A test
        whose setUp fails or skips after the server started never gets its
        tearDown (BotModeTestCase skipped that way before Parley had bot
        mode, leaving six servers running after every run)."""
        if self.proc is not None:
            self.kill_proc()

    def wait_for_services(self) -> None:
        pass  # built in: ready when the server is

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        """Creates the account offline, as an administrator would, while the
        server runs (the account store is SQLite in WAL mode)."""
        assert self.directory
        subprocess.run(
            ["parleyd", "--data-dir", self.directory / "data", "account", "add", username],
            input=(password or "unused-password") + "\n",
            text=True,
            check=True,
            capture_output=True,
        )


def get_irctest_controller_class():
    return ParleydController

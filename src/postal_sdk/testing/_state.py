"""The fake's servers: API keys, verified domains and stored messages, behind one lock.

The lock is re-entrant and shared by everything in one `FakePostal`, because the fake is
used from a test's thread and from the thread uvicorn serves it on at the same time.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
import uuid

from postal_sdk.testing import _mime
from postal_sdk.testing._records import FakeMessage, VerifiedDomain
from postal_sdk.testing._responses import ServerCrash
from postal_sdk.testing._ruby import is_blank, parameterize, strip_name_from_address

_ALPHANUMERIC = string.ascii_letters + string.digits
_UPPER_ALPHANUMERIC = string.ascii_uppercase + string.digits


def new_token() -> str:
    """A message token: 16 random alphanumeric characters (`SecureRandom.alphanumeric(16)`)."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))


def new_log_id() -> str:
    """A sender log id: 8 random uppercase alphanumeric characters."""
    return "".join(secrets.choice(_UPPER_ALPHANUMERIC) for _ in range(8))


ORGANIZATION = "fake-organization"
"""The permalink of the one organization every fake server belongs to."""


class Directory:
    """Every server of one fake, and the API key that opens each; guarded by `lock`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.servers: dict[str, FakeServer] = {}
        # The credentials table's collation makes key matching case-insensitive.
        self._servers_by_key: dict[str, FakeServer] = {}

    def add_server(self, name: str) -> FakeServer:
        """A new server called `name`; names are unique within the fake."""
        with self.lock:
            if name in self.servers:
                raise ValueError(f"a server called {name!r} exists already")
            server = FakeServer(name, self)
            self.servers[name] = server
            return server

    def register_key(self, key: str, server: FakeServer) -> None:
        """Bind an API key to `server`; a key opens exactly one server."""
        if is_blank(key):
            raise ValueError("an API key cannot be blank")
        with self.lock:
            if key.casefold() in self._servers_by_key:
                raise ValueError(f"the API key {key!r} is in use already")
            self._servers_by_key[key.casefold()] = server

    def server_for_key(self, key: str) -> FakeServer | None:
        """The server an API key opens, if any."""
        with self.lock:
            return self._servers_by_key.get(key.casefold())


class FakeServer:
    """A Postal mail server inside the fake: API keys, verified domains, messages.

    Message ids count up from 1 on each server, as each Postal server has its own message
    database. Get one from `FakePostal.server` or `FakePostal.add_server`.
    """

    def __init__(self, name: str, directory: Directory) -> None:
        self._name = name
        self._uuid = str(uuid.uuid4())
        self._directory = directory
        self._api_keys: list[str] = []
        self._domains: list[VerifiedDomain] = []
        self._allow_sender = False
        self._suspended = False
        self._messages: dict[int, FakeMessage] = {}
        self._last_message_id = 0
        self._last_delivery_id = 0

    def __repr__(self) -> str:
        return f"<FakeServer {self._name!r}>"

    @property
    def name(self) -> str:
        """The server's name, unique within its fake."""
        return self._name

    @property
    def uuid(self) -> str:
        """The server's uuid, as webhooks about the server name it."""
        return self._uuid

    @property
    def permalink(self) -> str:
        """The server's permalink: its name, parameterized as Postal does on creation."""
        return parameterize(self._name)

    @property
    def organization(self) -> str:
        """The permalink of the server's organization (every fake server's is the same)."""
        return ORGANIZATION

    @property
    def api_keys(self) -> tuple[str, ...]:
        """The API keys that authenticate as this server."""
        with self._directory.lock:
            return tuple(self._api_keys)

    @property
    def domains(self) -> tuple[VerifiedDomain, ...]:
        """The server's verified domains."""
        with self._directory.lock:
            return tuple(self._domains)

    @property
    def allow_sender(self) -> bool:
        """Whether the Sender address can authenticate a message whose From cannot."""
        return self._allow_sender

    @allow_sender.setter
    def allow_sender(self, value: bool) -> None:
        with self._directory.lock:
            self._allow_sender = value

    @property
    def suspended(self) -> bool:
        """Whether the server is suspended: every API request gets `ServerSuspended`."""
        return self._suspended

    @suspended.setter
    def suspended(self, value: bool) -> None:
        with self._directory.lock:
            self._suspended = value

    @property
    def messages(self) -> tuple[FakeMessage, ...]:
        """Every message stored on the server, by id."""
        with self._directory.lock:
            return tuple(self._messages.values())

    def message(self, message_id: int) -> FakeMessage:
        """The message with this id, as it is now; `KeyError` if there is none."""
        with self._directory.lock:
            return self._messages[message_id]

    def add_api_key(self, key: str) -> None:
        """Let `key` authenticate as this server. Keys are unique across the fake."""
        with self._directory.lock:
            self._directory.register_key(key, self)
            self._api_keys.append(key)

    def add_domain(self, domain: str | VerifiedDomain, *, use_for_any: bool = False) -> None:
        """Verify a sending domain (or add a `VerifiedDomain` as given)."""
        if isinstance(domain, str):
            domain = VerifiedDomain(domain, use_for_any=use_for_any)
        with self._directory.lock:
            self._domains.append(domain)

    def authenticated_domain(self, address: object) -> VerifiedDomain | None:
        """`Server#authenticated_domain_for_address`: the domain a From address may use."""
        if is_blank(address):
            return None
        if not isinstance(address, str):
            raise ServerCrash("strip_name_from_address called on a non-string")
        _, at, domain_name = strip_name_from_address(address).partition("@")
        if not at:
            return None
        with self._directory.lock:
            for domain in self._domains:
                if domain.name.casefold() == domain_name.casefold():
                    return domain
            catch_all = sorted(
                (domain for domain in self._domains if domain.use_for_any),
                key=lambda domain: domain.name,
            )
        return catch_all[0] if catch_all else None

    def domain_for_headers(self, raw: bytes) -> VerifiedDomain | None:
        """`Server#find_authenticated_domain_from_headers` for a raw message.

        Every From address must be authenticated, else every Sender address when the
        server allows it; a missing header never authenticates.
        """
        headers = ["from", "sender"] if self._allow_sender else ["from"]
        for header in headers:
            addresses = _mime.addresses(raw, header)
            domains = [self.authenticated_domain(address) for address in addresses]
            if addresses and all(domains):
                return domains[0]
        return None

    def store_message(
        self,
        *,
        rcpt_to: str | None,
        mail_from: str | None,
        raw: bytes,
        tag: str | None,
        bounce: bool,
    ) -> FakeMessage:
        """Store a new Pending message with the next id and a fresh token."""
        stored = _mime.as_stored(raw)
        headers = _mime.read_headers(stored)
        message_ids = headers.get("message-id")
        subjects = headers.get("subject")
        with self._directory.lock:
            self._last_message_id += 1
            message = FakeMessage(
                server=self._name,
                id=self._last_message_id,
                token=new_token(),
                rcpt_to=rcpt_to,
                mail_from=mail_from,
                raw_message=stored,
                size=len(raw),
                message_id=_mime.bare_message_id(message_ids[-1]) if message_ids else None,
                subject=subjects[-1][:200] if subjects else None,
                tag=tag,
                bounce=bounce,
                timestamp=time.time(),
            )
            self._messages[message.id] = message
            return message

    def update_message(self, message: FakeMessage) -> None:
        """Replace the stored snapshot of `message` with this newer one."""
        with self._directory.lock:
            self._messages[message.id] = message

    def next_delivery_id(self) -> int:
        """The id of the next delivery row on this server."""
        with self._directory.lock:
            self._last_delivery_id += 1
            return self._last_delivery_id

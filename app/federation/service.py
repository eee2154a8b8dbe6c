"""Peer instances: pairing, signed requests in both directions, and the peer deliverer.

A peer takes part in a sync as one endpoint, ``peer:<instance>/<anchor>``, where the anchor is
the endpoint of the peer's own sync it pairs through. Messages cross as core events: the sender
names a message by *its* canonical post id, which the receiver records as the native id of its
copy, so edits, deletes, replies and reactions resolve through the message maps on both sides.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.core import richtext
from app.core.authors import AuthorDirectory
from app.core.endpoints import Endpoint, EndpointError, Network
from app.core.events import Author, DeletePost, EditPost, FileRef, Kind, NewPost, ReactionChange
from app.core.files import FileSources, FileTooLarge
from app.core.ingest import Ingest
from app.core.payloads import EditPayload, PostPayload, ReactionPayload
from app.core.ports import Delivered, DeliveryTask
from app.egress import EgressPolicy, EgressRefused, refusal
from app.errors import FederationError, RemoteError
from app.federation import signing
from app.federation.identity import Identity, check_instance_id
from app.federation.urls import check_peer_url
from app.jsonbody import MalformedJson, json_object
from app.store.models import Peer, Sync, SyncEndpoint
from app.store.models_federation import FederationNonce, PairingCode
from app.store.rows import affected

log = logging.getLogger("syncbot.federation")

MAX_BODY = 16 * 1024 * 1024
MAX_INLINE_FILE = 10 * 1024 * 1024
PAIRING_TTL = timedelta(hours=24)
EVENTS_PATH = "/api/federation/events"
PAIR_PATH = "/api/federation/pair"
KEYS_PATH = "/api/federation/keys"


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise FederationError("not a pairing code") from None
    if not isinstance(data, dict):
        raise FederationError("not a pairing code")
    return data


@dataclass(frozen=True, slots=True)
class PeerView:
    instance_id: str
    url: str
    status: str
    endpoints: tuple[str, ...]


class Federation:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        identity: Identity,
        ingest: Ingest,
        authors: AuthorDirectory,
        public_url: str | None,
        allow_private: bool,
        enabled: bool,
        files: FileSources | None = None,
        timeout: float = 15.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        # How to read a file at its source network, to inline it for the peer.
        self._files = files if files is not None else FileSources()
        self.identity = identity
        self._ingest = ingest
        self._authors = authors
        self.public_url = public_url
        self.allow_private = allow_private
        self.enabled = enabled
        self._timeout = timeout
        # Peer URLs come from pairing codes: every call goes through the egress policy (at
        # connect time), widened to every network when private peers are allowed (labs, tests).
        egress = egress or EgressPolicy()
        self._egress = egress.widened(["0.0.0.0/0", "::/0"]) if allow_private else egress

    # -- pairing --------------------------------------------------------------------------

    def invite(self, sync_name: str, *, ttl: timedelta = PAIRING_TTL) -> str:
        """A single-use code a peer redeems to join ``sync_name``; expires after ``ttl``."""
        if not self.public_url:
            raise FederationError("SYNCBOT_PUBLIC_URL must be set to invite peers")
        code = secrets.token_urlsafe(24)
        with self._sessions() as s, s.begin():
            sync = s.execute(select(Sync).where(Sync.name == sync_name)).scalar_one_or_none()
            if sync is None:
                raise FederationError(f"no sync named {sync_name!r}")
            anchor = self._anchor(s, sync.id)
            s.add(
                PairingCode(
                    code_hash=_hash(code),
                    sync_id=sync.id,
                    anchor=anchor,
                    expires_at=datetime.now(UTC) + ttl,
                )
            )
        return _b64(
            {
                "url": self.public_url,
                "instance": self.identity.instance_id,
                "code": code,
                "fp": signing.fingerprint(self.identity.public_key()),
                "anchor": anchor,
            }
        )

    def _anchor(self, s: Session, sync_id: int) -> str:
        endpoint = (
            s.execute(
                select(SyncEndpoint.endpoint)
                .where(SyncEndpoint.sync_id == sync_id, SyncEndpoint.network != "peer")
                .order_by(SyncEndpoint.id)
            )
            .scalars()
            .first()
        )
        if endpoint is None:
            raise FederationError("the sync needs at least one local endpoint to pair through")
        return endpoint

    async def join(self, token: str, sync_name: str) -> str:
        """Redeem a peer's pairing code for our sync ``sync_name``; returns the peer's id."""
        if not self.public_url:
            raise FederationError("SYNCBOT_PUBLIC_URL must be set to join a peer")
        invite = _unb64(token)
        try:
            url = check_peer_url(str(invite["url"]), allow_private=self.allow_private)
            fp, code, remote_anchor = str(invite["fp"]), str(invite["code"]), str(invite["anchor"])
            Endpoint.parse(remote_anchor)
            check_instance_id(str(invite.get("instance") or ""))
        except (KeyError, EndpointError, FederationError) as exc:
            raise FederationError(f"malformed pairing code: {exc}") from None
        with self._sessions() as s:
            known = s.execute(
                select(Peer).where(Peer.instance_id == str(invite["instance"]))
            ).scalar_one_or_none()
            if known is not None and signing.fingerprint(known.public_key) != fp:
                raise PeerConflict(
                    f"instance {invite['instance']} is already paired with another key"
                )
            sync = s.execute(select(Sync).where(Sync.name == sync_name)).scalar_one_or_none()
            if sync is None:
                raise FederationError(f"no sync named {sync_name!r}")
            anchor, sync_id = self._anchor(s, sync.id), sync.id
        body = json.dumps(
            {
                "code": code,
                "instance": self.identity.instance_id,
                "url": self.public_url,
                "public_key": self.identity.public_key(),
                "anchor": anchor,
            }
        ).encode()
        status, data, headers = await self._post(url, PAIR_PATH, body)
        if status != 200:
            raise FederationError(f"peer refused pairing: {data.get('error', status)}")
        peer_key = str(data.get("public_key") or "")
        # The response must come from the key the code was issued with (possession proof).
        if signing.fingerprint(peer_key) != fp:
            raise FederationError("peer answered with a key other than the code's")
        signing.verify(peer_key, headers, "POST", PAIR_PATH, data["_raw"])
        peer_id = check_instance_id(str(data.get("instance") or ""))
        with self._sessions() as s, s.begin():
            self._store_peer(s, peer_id, url, peer_key)
            s.add(
                SyncEndpoint(
                    sync_id=sync_id,
                    endpoint=f"peer:{peer_id}/{remote_anchor}",
                    network="peer",
                    status="active",
                )
            )
            s.add(
                PairingCode(
                    code_hash=_hash(code + ":joined"),
                    sync_id=sync_id,
                    anchor=anchor,
                    expires_at=datetime.now(UTC),
                    used_at=datetime.now(UTC),
                    used_by=peer_id,
                )
            )
        return peer_id

    def _store_peer(self, s: Session, instance: str, url: str, key: str) -> None:
        """Record a newly paired peer, or accept a known one pairing into another sync.

        A pairing never changes a known peer's key or URL: anyone holding any pairing code
        could otherwise claim a paired peer's instance id, lock it out and receive its
        deliveries. A key changes only through the rotation the peer signs with its old key.

        Raises:
            PeerConflict: ``instance`` is paired already with another key or URL.
        """
        peer = s.execute(select(Peer).where(Peer.instance_id == instance)).scalar_one_or_none()
        if peer is None:
            s.add(Peer(instance_id=instance, url=url, public_key=key, status="active"))
            return
        if peer.public_key.strip() != key.strip() or peer.url != url:
            raise PeerConflict(
                f"instance {instance} is already paired with another key or URL "
                "(remove that peer first if it really moved)"
            )

    async def _pair_route(self, request: Request) -> Response:
        if not self.enabled:
            return _error(404, "federation is disabled")
        body = await _body(request)
        if len(body) > MAX_BODY:
            return _error(413, "request body too large")
        try:
            data = json_object(body)
            fields: dict[str, str] = {}
            for name in ("public_key", "instance", "url", "anchor", "code"):
                value = data.get(name)
                if not isinstance(value, str) or not value:
                    raise MalformedJson("public_key, instance, url, anchor and code are required")
                fields[name] = value
            anchor = str(Endpoint.parse(fields["anchor"]))
            instance = check_instance_id(fields["instance"])
        except (MalformedJson, EndpointError, FederationError) as exc:
            return _error(400, f"malformed pairing request: {exc}")
        code_hash = _hash(fields["code"])
        # The code first: without a live one nothing else about the request matters (and no
        # name it carries is ever looked at).
        if not await asyncio.to_thread(self._code_is_live, code_hash):
            return _error(403, "pairing code unknown, used or expired")
        key = fields["public_key"]
        try:
            # Signed with the key it presents: the joiner proves it holds that key.
            signing.verify(key, dict(request.headers), "POST", PAIR_PATH, body)
            if instance != request.headers.get(signing.H_INSTANCE):
                raise FederationError("instance id does not match the signature")
        except FederationError as exc:
            return _error(401, str(exc))
        try:
            # Syntax and literal addresses only: names are checked when we connect.
            url = check_peer_url(fields["url"], allow_private=self.allow_private)
        except FederationError as exc:
            return _error(400, f"malformed pairing request: {exc}")
        try:
            my_anchor = await asyncio.to_thread(
                self._redeem, code_hash, instance, url, key, anchor
            )
        except PeerConflict as exc:
            return _error(409, str(exc))
        if my_anchor is None:
            return _error(403, "pairing code unknown, used or expired")
        answer = json.dumps(
            {
                "instance": self.identity.instance_id,
                "public_key": self.identity.public_key(),
                "anchor": my_anchor,
            }
        ).encode()
        headers = signing.sign_headers(
            self.identity.key(), self.identity.instance_id, "POST", PAIR_PATH, answer
        )
        log.info("peer paired", extra={"peer": instance})
        return Response(answer, media_type="application/json", headers=headers)

    def _code_is_live(self, code_hash: str) -> bool:
        with self._sessions() as s:
            code = s.get(PairingCode, code_hash)
            return (
                code is not None and code.used_at is None and code.expires_at >= datetime.now(UTC)
            )

    def _redeem(
        self, code_hash: str, instance: str, url: str, key: str, anchor: str
    ) -> str | None:
        """Use the code and record the peer and its endpoint; our anchor, or None if the
        code is no longer live."""
        now = datetime.now(UTC)
        try:
            with self._sessions() as s, s.begin():
                code = s.get(PairingCode, code_hash, with_for_update=True)
                if code is None or code.used_at is not None or code.expires_at < now:
                    return None
                code.used_at, code.used_by = now, instance
                self._store_peer(s, instance, url, key)
                s.add(
                    SyncEndpoint(
                        sync_id=code.sync_id,
                        endpoint=f"peer:{instance}/{anchor}",
                        network="peer",
                        status="active",
                    )
                )
                s.flush()
                return code.anchor
        except IntegrityError:
            raise PeerConflict(f"peer:{instance}/{anchor} is in a sync already") from None

    # -- signed requests ------------------------------------------------------------------

    async def _post(
        self, base: str, path: str, body: bytes, key: Any = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = signing.sign_headers(
            key or self.identity.key(), self.identity.instance_id, "POST", path, body
        )
        headers["Content-Type"] = "application/json"
        self._egress.check_url(base + path, network="peer")
        try:
            async with (
                self._egress.session(time_limit=self._timeout) as http,
                http.post(base + path, data=body, headers=headers, allow_redirects=False) as resp,
            ):
                raw = await resp.content.read(MAX_BODY + 1)
                if len(raw) > MAX_BODY:
                    raise EgressRefused("peer answer too large", network="peer")
                try:
                    data = json_object(raw) if raw else {}
                except MalformedJson:
                    data = {}
                data["_raw"] = raw
                return resp.status, data, dict(resp.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            refused = refusal(exc)
            if refused is not None:
                raise EgressRefused(str(refused), network="peer") from None
            raise RemoteError(
                f"peer unreachable: {type(exc).__name__}",
                network="peer",
                retryable=True,
                outcome_unknown=True,
            ) from exc

    def _authenticate(self, request: Request, body: bytes) -> str:
        instance = request.headers.get(signing.H_INSTANCE, "")
        with self._sessions() as s:
            peer = s.execute(
                select(Peer).where(Peer.instance_id == instance, Peer.status == "active")
            ).scalar_one_or_none()
            key = peer.public_key if peer else None
        if key is None:
            raise FederationError("unknown peer")
        signed = signing.verify(key, dict(request.headers), request.method, request.url.path, body)
        try:
            with self._sessions() as s, s.begin():
                s.add(
                    FederationNonce(
                        instance_id=instance,
                        nonce=signed.nonce,
                        expires_at=datetime.now(UTC)
                        + timedelta(seconds=2 * signing.WINDOW_SECONDS),
                    )
                )
        except IntegrityError:
            raise FederationError("replayed request (nonce already used)") from None
        return instance

    async def _keys_route(self, request: Request) -> Response:
        if not self.enabled:
            return _error(404, "federation is disabled")
        body = await _body(request)
        if len(body) > MAX_BODY:
            return _error(413, "request body too large")
        try:
            instance = await asyncio.to_thread(self._authenticate, request, body)
        except FederationError as exc:
            return _error(401, str(exc))
        try:
            new_key = json_object(body).get("public_key")
            if not isinstance(new_key, str):
                raise MalformedJson("public_key is required")
            signing.load_public(new_key)
        except (MalformedJson, FederationError) as exc:
            return _error(400, f"malformed key announcement: {exc}")
        with self._sessions() as s, s.begin():
            peer = s.execute(select(Peer).where(Peer.instance_id == instance)).scalar_one()
            peer.public_key = new_key
        log.info("peer rotated its key", extra={"peer": instance})
        return JSONResponse({"ok": True})

    async def rotate_key(self) -> int:
        """Make a new key pair and announce it to every peer, signed with the old key."""
        old, new = await asyncio.to_thread(self.identity.rotate)
        body = json.dumps({"public_key": signing.public_pem(new)}).encode()
        announced = 0
        for peer in self.peers():
            status, _data, _h = await self._post(peer.url, KEYS_PATH, body, key=old)
            announced += status == 200
        return announced

    # -- events in --------------------------------------------------------------------------

    async def _events_route(self, request: Request) -> Response:
        if not self.enabled:
            return _error(404, "federation is disabled")
        body = await _body(request)
        if len(body) > MAX_BODY:
            return _error(413, "request body too large")
        try:
            sender = await asyncio.to_thread(self._authenticate, request, body)
        except FederationError as exc:
            return _error(401, str(exc))
        try:
            data = json_object(body)
            _check_event_shape(data)
            event = await asyncio.to_thread(self._to_core, sender, data)
        except NotInSync as exc:
            return _error(403, str(exc))
        except (
            MalformedJson,
            FederationError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            EndpointError,
            richtext.RichTextError,
        ) as exc:
            return _error(400, f"malformed event: {exc}")
        result = await self._ingest(event)
        return JSONResponse({"ok": True, "duplicate": result.duplicate})

    def _to_core(self, sender: str, data: dict[str, Any]) -> Any:
        source = Endpoint(Network.PEER, f"{sender}/{Endpoint.parse(str(data['anchor']))}")
        with self._sessions() as s:
            member = s.execute(
                select(SyncEndpoint.id).where(SyncEndpoint.endpoint == str(source))
            ).first()
        if member is None:
            raise NotInSync(f"{source} is not in a sync here")
        kind = Kind(data["kind"])
        key = f"peer:{sender}:{data['uid']}"
        native = str(data["native_id"])
        if kind is Kind.POST:
            files = tuple(FileRef.from_json(f) for f in data.get("files") or [])
            for f in files:
                if not f.url.startswith("data:"):
                    raise FederationError("peer files must be inline")
            return NewPost(
                source=source,
                native_id=native,
                dedupe_key=key,
                author=Author.from_json(data["author"]),
                body=richtext.from_json(data["body"]),
                thread_native_id=data.get("thread_native_id"),
                broadcast=bool(data.get("broadcast")),
                files=files,
            )
        if kind is Kind.EDIT:
            return EditPost(
                source=source,
                native_id=native,
                dedupe_key=key,
                body=richtext.from_json(data["body"]),
            )
        if kind is Kind.DELETE:
            return DeletePost(source=source, native_id=native, dedupe_key=key)
        return ReactionChange(
            source=source,
            native_id=native,
            dedupe_key=key,
            emoji=str(data["emoji"]),
            actor=f"{source}|{data.get('actor') or 'peer'}",
            added=kind is Kind.REACT,
            actor_name=str(data.get("actor_name") or ""),
        )

    # -- events out (the Deliverer for peer: endpoints) ------------------------------------

    network = Network.PEER

    async def deliver(self, task: DeliveryTask) -> Delivered:
        instance = task.target.peer_instance
        with self._sessions() as s:
            peer = s.execute(
                select(Peer).where(Peer.instance_id == instance, Peer.status == "active")
            ).scalar_one_or_none()
            # Our anchor as this peer knows it, for the sync this endpoint is in.
            anchor = (
                s.execute(
                    select(PairingCode.anchor)
                    .join(SyncEndpoint, SyncEndpoint.sync_id == PairingCode.sync_id)
                    .where(
                        PairingCode.used_by == instance, SyncEndpoint.endpoint == str(task.target)
                    )
                )
                .scalars()
                .first()
            )
        if peer is None or anchor is None:
            raise RemoteError(f"peer {instance} is not paired", network="peer", retryable=False)
        payload = task.payload
        data: dict[str, Any] = {"kind": str(task.kind), "uid": task.uid, "anchor": anchor}
        if isinstance(payload, PostPayload):
            source = payload.source
            author = await self._authors.resolve(source, payload.author)
            data |= {
                "native_id": task.post_id,
                "author": author.to_json(),
                "body": await self._named_mentions(source, payload.body),
                "thread_native_id": task.parent_copy.native_id if task.parent_copy else None,
                "broadcast": payload.broadcast,
                "files": await self._inline_files(source, payload.files),
            }
        else:
            if task.copy is None:
                raise RemoteError(
                    f"no copy of post {task.post_id} at {task.target}",
                    network="peer",
                    code="no_copy",
                    retryable=False,
                )
            data["native_id"] = task.copy.native_id
            if isinstance(payload, EditPayload):
                data["body"] = await self._named_mentions(payload.source, payload.body)
            if isinstance(payload, ReactionPayload):
                data |= {"emoji": payload.emoji, "actor_name": payload.actor_name}
        body = json.dumps(data).encode()
        status, answer, _h = await self._post(peer.url, EVENTS_PATH, body)
        if status == 200:
            return Delivered(native_id=task.post_id if task.kind is Kind.POST else None)
        retryable = status >= 500 or status == 429
        raise RemoteError(
            f"peer answered {status}: {answer.get('error')}",
            network="peer",
            status=status,
            retryable=retryable,
            outcome_unknown=status >= 500,
        )

    async def _named_mentions(self, source: Endpoint, tree: richtext.Node) -> dict[str, Any]:
        # Ids mean nothing on the other side: send names, the receiver maps them locally.
        names: dict[str, str] = {}
        for mention in richtext.mentions(tree):
            if not mention.name and source.network is Network.SLACK:
                who = await self._authors.resolve(
                    source, Author("", f"{source.slack_team}/{mention.user_id}")
                )
                names[mention.user_id] = who.name
        if names:
            tree = richtext.transform(
                tree,
                lambda n: (
                    richtext.UserMention(n.user_id, names.get(n.user_id, n.name))
                    if isinstance(n, richtext.UserMention)
                    else n
                ),
            )
        return richtext.to_json(tree)

    async def _inline_files(
        self, source: Endpoint, files: tuple[FileRef, ...]
    ) -> list[dict[str, Any]]:
        out = []
        for ref in files:
            if ref.size > MAX_INLINE_FILE:
                continue
            fetch = self._files.get(source.network)
            if fetch is None:
                continue
            chunks = []
            size = 0
            async for chunk in fetch(source, ref):
                size += len(chunk)
                if size > MAX_INLINE_FILE:
                    raise FileTooLarge(
                        f"{ref.name} is too large to send to a peer", network="peer"
                    )
                chunks.append(chunk)
            data = base64.b64encode(b"".join(chunks)).decode()
            out.append(
                FileRef(
                    ref.native_id,
                    ref.name,
                    ref.mimetype,
                    size,
                    f"data:{ref.mimetype};base64,{data}",
                    ref.title,
                ).to_json()
            )
        return out

    # -- admin ----------------------------------------------------------------------------

    def peers(self) -> list[PeerView]:
        with self._sessions() as s:
            peers = s.execute(select(Peer).order_by(Peer.instance_id)).scalars().all()
            out = []
            for p in peers:
                eps = (
                    s.execute(
                        select(SyncEndpoint.endpoint).where(
                            SyncEndpoint.endpoint.startswith(
                                f"peer:{p.instance_id}/", autoescape=True
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
                out.append(PeerView(p.instance_id, p.url, p.status, tuple(eps)))
            return out

    def remove(self, instance: str) -> None:
        with self._sessions() as s, s.begin():
            peer = s.execute(select(Peer).where(Peer.instance_id == instance)).scalar_one_or_none()
            if peer is None:
                raise FederationError(f"no peer {instance}")
            s.execute(
                delete(SyncEndpoint).where(
                    SyncEndpoint.endpoint.startswith(f"peer:{instance}/", autoescape=True)
                )
            )
            s.delete(peer)

    def purge_nonces(self) -> int:
        with self._sessions() as s, s.begin():
            result = s.execute(
                delete(FederationNonce).where(FederationNonce.expires_at < datetime.now(UTC))
            )
            return affected(result)

    @property
    def routes(self) -> list[Route]:
        return [
            Route(PAIR_PATH, self._pair_route, methods=["POST"]),
            Route(EVENTS_PATH, self._events_route, methods=["POST"]),
            Route(KEYS_PATH, self._keys_route, methods=["POST"]),
            Route("/api/federation/ping", self._ping, methods=["GET"]),
        ]

    async def _ping(self, _request: Request) -> Response:
        if not self.enabled:
            return _error(404, "federation is disabled")
        return JSONResponse({"ok": True, "instance": self.identity.instance_id})


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return b"\0" * (MAX_BODY + 1)  # refused by the caller without reading it
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return b"\0" * (MAX_BODY + 1)
        chunks.append(chunk)
    return b"".join(chunks)


class PeerConflict(FederationError):
    """A pairing that would change a known peer's key or URL, or repeat an endpoint."""


class NotInSync(FederationError):
    """A signed event for an endpoint of the peer that is in no sync here."""


_EVENT_TEXT = {"kind": 16, "uid": 64, "anchor": 255, "native_id": 255}
_EVENT_OPTIONAL_TEXT = {"thread_native_id": 255, "emoji": 128, "actor": 64, "actor_name": 255}


def _check_event_shape(data: dict[str, Any]) -> None:
    """Types and lengths of a peer event, before anything reads it (the store's columns are
    no longer than this, and a peer's typo must be a 400, not a 500)."""
    for name, limit in _EVENT_TEXT.items():
        value = data.get(name)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise MalformedJson(f"{name} must be a string of 1-{limit} characters")
    for name, limit in _EVENT_OPTIONAL_TEXT.items():
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise MalformedJson(f"{name} must be a string of at most {limit} characters")
    author = data.get("author")
    if author is not None:
        if not isinstance(author, dict):
            raise MalformedJson("author must be an object")
        for name, limit in (("name", 255), ("native_id", 255), ("avatar_url", 1024)):
            value = author.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise MalformedJson(f"author.{name} must be a string of at most {limit}")
    files = data.get("files")
    if files is not None and (
        not isinstance(files, list) or not all(isinstance(f, dict) for f in files)
    ):
        raise MalformedJson("files must be a list of objects")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)

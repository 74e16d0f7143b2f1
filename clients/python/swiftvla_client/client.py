"""`RobotClient`: one robot (or simulator) in the SwiftVLA fleet, the Python counterpart of
the Swift actor's network side (Sources/Fleet/ActorSession.swift).

    client = RobotClient("127.0.0.1:50051", actor_id="robot-1", embodiment="arm7", tasks=["reach"])
    client.register()
    recorder = client.recorder(instruction="reach the red block")
    ...  # recorder.add_step(state=..., action=..., frames=..., operator=takeover)
    client.submit(recorder.finish(success=True))   # queued until acked, re-sent after failures
    for version, manifest, data in client.watch_policy():
        ...  # load the verified safetensors bytes at the next episode boundary
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, TypeVar

import grpc

from . import fleet_pb2 as pb
from . import fleet_pb2_grpc as pb_grpc
from .embodiments import EmbodimentLayout, layout_for
from .episode import Episode, EpisodeRecorder
from .episode_messages import encode
from .errors import EpisodeRejected, LearnerUnavailable, RegistrationRefused, WeightTransferError
from .weights import PolicyVersion, WeightAssembler

T = TypeVar("T")

#: Refusals for invalid data: re-sending the same episode cannot help (as in the Swift actor).
REJECTED_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                            grpc.StatusCode.RESOURCE_EXHAUSTED})
#: Errors worth retrying registration on (the learner is not up yet).
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class Registration:
    """What the learner answered at registration."""

    embodiment: str
    task: str
    seed_base: int              # scene seeds are seed_base + episode index
    policy_version: int         # newest published version (0 = none yet)
    max_message_bytes: int
    max_steps_per_chunk: int
    ingest_endpoint: str = ""   # a data-parallel learner's rank for this robot's uploads ("" = here)


@dataclass(frozen=True)
class UploadResult:
    """The fate of one queued episode: "acked", "duplicate" (already stored; stored once),
    "rejected" (invalid, dropped) or "pending" (learner unreachable, kept for re-sending)."""

    episode_id: str
    status: str
    steps: int = 0
    error: Optional[Exception] = None

    @property
    def acked(self) -> bool:
        return self.status in ("acked", "duplicate")

    @property
    def duplicate(self) -> bool:
        return self.status == "duplicate"


@dataclass
class ClientStats:
    """Counters of this robot; the ActorStats part travels in heartbeats."""

    episodes_finished: int = 0
    episodes_acked: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    registrations: int = 0
    steps: int = 0
    operator_steps: int = 0
    successes: int = 0
    weight_failures: int = 0
    policy_version: int = 0     # the version the robot acts with


@dataclass(frozen=True)
class HeartbeatResult:
    latest_policy_version: int
    embodiment: str
    task: str
    seed_base: int


class RobotClient:
    """A robot's connection to the learner: registration, the upload queue (episodes are kept
    until acked and re-sent with back-off; the learner dedups by episode id), heartbeats and
    the policy stream. Thread-safe: `watch_policy()` may run on its own thread.

    `target` is "host:port". `layout` overrides the built-in slot map of `embodiment`.
    `retry_for` bounds how long one call keeps retrying transient failures (seconds).
    A data-parallel learner may name another rank for uploads at registration; the client then
    uploads there over a channel from `ingest_channel` (default: plaintext, like `target`).
    """

    def __init__(self, target: str = "127.0.0.1:50051", *, actor_id: str, embodiment: str,
                 tasks: Sequence[str] = (), token: str = "", layout: Optional[EmbodimentLayout] = None,
                 steps_per_chunk: int = 16, upload_timeout: float = 30.0, rpc_timeout: float = 10.0,
                 retry_for: float = 30.0, max_backoff: float = 2.0, channel: Optional[grpc.Channel] = None,
                 ingest_channel=None):
        if not actor_id:
            raise ValueError("actor_id must not be empty")
        self.target = target
        self.actor_id = actor_id
        self.embodiment = embodiment
        self.tasks = list(tasks)
        self.token = token
        # Every call carries the token (the learner checks each one, so a revoked robot can
        # neither upload nor download weights).
        self._metadata = (("authorization", "Bearer " + token),) if token else ()
        self.layout = layout or layout_for(embodiment)
        if self.layout.name != embodiment:
            raise ValueError(f"layout is for {self.layout.name}, not {embodiment}")
        self.steps_per_chunk = steps_per_chunk
        self.upload_timeout = upload_timeout
        self.rpc_timeout = rpc_timeout
        self.retry_for = retry_for
        self.max_backoff = max_backoff
        self.stats = ClientStats()
        self._lock = threading.RLock()
        self._pending: List[Episode] = []
        self._registration: Optional[Registration] = None
        self._calls: set = set()
        self._closed = False
        self._own_channel = channel is None
        self._channel = channel or grpc.insecure_channel(target, options=self._channel_options(target))
        self._stub = pb_grpc.FleetStub(self._channel)
        self._ingest_channel_factory = ingest_channel or (lambda t: grpc.insecure_channel(t, options=self._channel_options(t)))
        self._ingest: Optional[tuple] = None   # (endpoint, channel, stub) when uploads go to another rank

    @staticmethod
    def _channel_options(target: str):
        options = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
        host = target.rsplit(":", 1)[0].strip("[]")
        if host in ("127.0.0.1", "localhost", "::1"):
            options.append(("grpc.enable_http_proxy", 0))   # never send loopback through a proxy
        return options

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Cancels open policy streams and closes the channel (pending episodes are kept in
        `pending` for the caller to persist or re-submit elsewhere)."""
        with self._lock:
            self._closed = True
            calls = list(self._calls)
        for call in calls:
            call.cancel()
        if self._own_channel:
            self._channel.close()
        if self._ingest is not None:
            self._ingest[1].close()

    def __enter__(self) -> "RobotClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- registration ------------------------------------------------------------------------

    def register(self, retry_for: Optional[float] = None) -> Registration:
        """Announces this robot; retries with back-off while the learner is unreachable.
        Raises `RegistrationRefused` (bad token, unknown embodiment/task) or
        `LearnerUnavailable`."""
        request = pb.RegisterActorRequest(actor_id=self.actor_id, embodiment=self.embodiment,
                                          tasks=self.tasks, auth_token=self.token)
        try:
            response = self._retrying("register", lambda: self._stub.RegisterActor(request, timeout=self.rpc_timeout, metadata=self._metadata),
                                      retry_on=_UNREACHABLE, retry_for=retry_for)
        except grpc.RpcError as e:
            raise RegistrationRefused(e.code(), e.details() or "") from None
        a = response.assignment
        registration = Registration(
            embodiment=a.embodiment, task=a.task, seed_base=int(a.seed_base), policy_version=int(response.policy_version),
            max_message_bytes=int(response.max_message_bytes), max_steps_per_chunk=int(response.max_steps_per_chunk),
            ingest_endpoint=response.ingest_endpoint)
        with self._lock:
            self._registration = registration
            self.stats.registrations += 1
        if registration.ingest_endpoint:
            self._register_for_uploads(request, registration.ingest_endpoint, retry_for)
        return registration

    def _register_for_uploads(self, request, endpoint: str, retry_for: Optional[float]) -> None:
        """Registers with the rank that takes this robot's uploads (so it accepts them)."""
        with self._lock:
            if self._ingest is None or self._ingest[0] != endpoint:
                if self._ingest is not None:
                    self._ingest[1].close()
                channel = self._ingest_channel_factory(endpoint)
                self._ingest = (endpoint, channel, pb_grpc.FleetStub(channel))
            stub = self._ingest[2]
        try:
            self._retrying("register", lambda: stub.RegisterActor(request, timeout=self.rpc_timeout, metadata=self._metadata),
                           retry_on=_UNREACHABLE, retry_for=retry_for)
        except grpc.RpcError as e:
            raise RegistrationRefused(e.code(), e.details() or "") from None

    @property
    def _upload_stub(self):
        with self._lock:
            return self._ingest[2] if self._ingest is not None else self._stub

    @property
    def registration(self) -> Registration:
        """The current registration (registers first if needed)."""
        with self._lock:
            current = self._registration
        return current or self.register()

    @property
    def task(self) -> str:
        """The task the learner assigned."""
        return self.registration.task

    @property
    def policy_version(self) -> int:
        """The policy version this robot acts with: set it when you load a new version (at an
        episode boundary); recorders and heartbeats report it."""
        return self.stats.policy_version

    @policy_version.setter
    def policy_version(self, version: int) -> None:
        with self._lock:
            self.stats.policy_version = int(version)

    def recorder(self, instruction: str = "", *, seed: Optional[int] = None, task: Optional[str] = None) -> EpisodeRecorder:
        """A recorder for this robot's next episode, acted by `policy_version`."""
        return EpisodeRecorder(self.layout, task or self.task, instruction, policy_version=self.policy_version, seed=seed)

    # -- uploads -----------------------------------------------------------------------------

    @property
    def pending(self) -> List[Episode]:
        """Finished episodes not yet acked, oldest first."""
        with self._lock:
            return list(self._pending)

    def submit(self, episode: Episode, retry_for: Optional[float] = None) -> List[UploadResult]:
        """Queues a finished episode and uploads everything queued (see `flush`)."""
        with self._lock:
            self._pending.append(episode)
            s = self.stats
            s.episodes_finished += 1
            s.steps += episode.step_count
            s.operator_steps += episode.operator_steps
            s.successes += int(episode.success)
        return self.flush(retry_for)

    def flush(self, retry_for: Optional[float] = None) -> List[UploadResult]:
        """Uploads queued episodes oldest first. Acked and rejected ones leave the queue; when
        the learner stays unreachable, the rest stay queued (a "pending" result) for the next
        call. Re-sending an episode the learner already stored is harmless (duplicate)."""
        results = []
        while True:
            with self._lock:
                if not self._pending:
                    return results
                episode = self._pending[0]
            try:
                result = self.upload_episode(episode, retry_for=retry_for)
            except EpisodeRejected as e:
                result = UploadResult(episode.id, "rejected", episode.step_count, e)
            except LearnerUnavailable as e:
                results.append(UploadResult(episode.id, "pending", episode.step_count, e))
                return results
            with self._lock:
                self._pending = [p for p in self._pending if p is not episode]
            results.append(result)

    def upload_episode(self, episode: Episode, retry_for: Optional[float] = None) -> UploadResult:
        """Streams one episode (header, step chunks, end) and returns the learner's ack, sent
        only once the episode is durable. Transient failures are retried with back-off for up
        to `retry_for` seconds (then `LearnerUnavailable`); if the learner forgot this robot
        (restarted), it registers again and re-sends. Raises `EpisodeRejected` for invalid
        data. Does not touch the queue (see `submit`)."""
        registration = self.registration
        per_chunk = self.steps_per_chunk
        if registration.max_steps_per_chunk > 0:
            per_chunk = min(per_chunk, registration.max_steps_per_chunk)
        messages = encode(episode, self.actor_id, steps_per_chunk=per_chunk,
                          max_message_bytes=registration.max_message_bytes or None)
        reregistered = 0
        window = self.retry_for if retry_for is None else retry_for
        deadline = time.monotonic() + window
        delay = 0.05
        while True:
            try:
                ack = self._upload_stub.UploadEpisode(iter(messages), timeout=self.upload_timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                code = e.code()
                if code in REJECTED_CODES:
                    with self._lock:
                        self.stats.rejected += 1
                    raise EpisodeRejected(episode.id, code, e.details() or "") from None
                with self._lock:
                    self.stats.retries += 1
                if code == grpc.StatusCode.UNAUTHENTICATED and reregistered < 3:
                    reregistered += 1
                    self.register(retry_for=max(0.0, deadline - time.monotonic()))
                    continue
                if self._closed or time.monotonic() + delay > deadline:
                    raise LearnerUnavailable(f"upload of episode {episode.id}", e) from None
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            with self._lock:
                self.stats.episodes_acked += 1
                self.stats.duplicates += int(ack.duplicate)
            return UploadResult(ack.episode_id, "duplicate" if ack.duplicate else "acked", int(ack.steps))

    # -- heartbeats --------------------------------------------------------------------------

    def heartbeat(self, stats: Optional[pb.ActorStats] = None) -> HeartbeatResult:
        """Reports liveness and counters (this client's own unless `stats` is given); answers
        with the newest published version and the current assignment."""
        self.registration
        if stats is None:
            with self._lock:
                s = self.stats
                stats = pb.ActorStats(
                    episodes_finished=s.episodes_finished, episodes_acked=s.episodes_acked,
                    pending_uploads=len(self._pending), steps=s.steps, operator_steps=s.operator_steps,
                    successes=s.successes, policy_version=s.policy_version)
        request = pb.HeartbeatRequest(actor_id=self.actor_id, stats=stats)
        call = lambda: self._stub.Heartbeat(request, timeout=self.rpc_timeout, metadata=self._metadata)
        try:
            response = call()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                raise LearnerUnavailable("heartbeat", e) from None
            self.register()
            try:
                response = call()
            except grpc.RpcError as e2:
                raise LearnerUnavailable("heartbeat", e2) from None
        a = response.assignment
        return HeartbeatResult(int(response.latest_policy_version), a.embodiment, a.task, int(a.seed_base))

    # -- policy versions ---------------------------------------------------------------------

    def watch_policy(self, known_version: Optional[int] = None, *, reconnect: bool = True,
                     accept_delta: bool = True) -> Iterator[PolicyVersion]:
        """Yields `PolicyVersion(version, manifest, data)` for every newer published version,
        each verified (chunk order, size, CRC-32 as zlib.crc32, tensor table) before it is
        yielded; `data` is the safetensors file (`.tensors()` decodes it). A damaged version
        is counted in `stats.weight_failures` and skipped. With `reconnect`, a dropped stream
        is re-opened with back-off, asking only for versions newer than the last one yielded;
        it ends when the client is closed or the generator is closed. With `accept_delta` the
        learner may send a stream's later versions as deltas against the previous one (rebuilt
        and verified here; `data` is always the whole file)."""
        known = self.policy_version if known_version is None else int(known_version)
        delay = 0.1
        while not self._closed:
            try:
                self.registration
            except LearnerUnavailable:
                if not reconnect:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            call = self._stub.WatchPolicy(pb.WatchPolicyRequest(actor_id=self.actor_id, known_version=known,
                                                                accept_delta=accept_delta),
                                          metadata=self._metadata)
            with self._lock:
                self._calls.add(call)
            assembler = WeightAssembler()
            try:
                for update in call:
                    version = assembler.consume(update)
                    if version is not None and version.version > known:
                        known = version.version
                        delay = 0.1
                        yield version
            except WeightTransferError:
                with self._lock:
                    self.stats.weight_failures += 1
            except grpc.RpcError as e:
                if self._closed:
                    return
                if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                    with self._lock:
                        self._registration = None   # registers again on the next round
                elif not reconnect:
                    raise LearnerUnavailable("policy stream", e) from None
            finally:
                call.cancel()
                with self._lock:
                    self._calls.discard(call)
            if not reconnect:
                return
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    # -- helpers -----------------------------------------------------------------------------

    def _retrying(self, what: str, call: Callable[[], T], retry_on, retry_for: Optional[float]) -> T:
        window = self.retry_for if retry_for is None else retry_for
        deadline = time.monotonic() + window
        delay = 0.05
        while True:
            try:
                return call()
            except grpc.RpcError as e:
                if e.code() not in retry_on:
                    raise
                with self._lock:
                    self.stats.retries += 1
                if self._closed or time.monotonic() + delay > deadline:
                    raise LearnerUnavailable(what, e) from None
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)

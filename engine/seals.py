"""Seals: Merkle roots over chain heads, signed with an Ed25519 key kept outside the database.

A seal records every instance's (instance, seq, head hash) and one Merkle root over them. With a
key, the seal carries two kinds of signature, so that someone who can write the database but does
not hold the key cannot rewrite a seal unnoticed, nor remove part of it unnamed:

* each head signs `seal id | instance | seq | hash | previous head` (the previous head is the
  instance:seq before it in the seal, and the first head's is the last one: a ring), so a
  rewritten head names its instance, and a removed head is named by the one after it (the root is
  not in it: a rewritten root must not hide which head was rewritten);
* the seal signs `root | number of heads | time | last head`, so a rewritten root, a changed count
  or a removed last head is seen.

Anyone with the public key (or with a root kept outside) checks them; see `check_seals`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .chain import Failure
from .errors import InputError

HEX64 = re.compile(r"[0-9a-fA-F]{64}")
ROOT_LINE = re.compile(r"(?:root\s+)?([0-9a-fA-F]{64})")


def merkle_root(leaves: list[str]) -> str:
    """Merkle root over hex leaves (sha256 of pairs; an odd node is carried up)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    level = [bytes.fromhex(x) for x in leaves]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(hashlib.sha256(level[i] + level[i + 1]).digest())
            else:
                nxt.append(level[i])
        level = nxt
    return level[0].hex()


def seal_leaf(instance_id: int, seq: int, head: str) -> str:
    return hashlib.sha256(f"{instance_id}:{seq}:{head}".encode("ascii")).hexdigest()


# ----------------------------------------------------------------------------- keys
def fingerprint(key: Ed25519PublicKey) -> str:
    """sha256 of the raw 32-byte public key, hex: the key id stored with a seal."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def keygen(out: str | Path) -> tuple[Path, Path, str]:
    """Write a new private key to `out` (mode 0600) and its public key to `out.pub`.

    Returns (private path, public path, fingerprint). Refuses to overwrite either file.
    """
    priv_path = Path(out)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists():
            raise InputError(f"'{p}' already exists; choose another --out or move the old key away")
    if not priv_path.parent.is_dir():
        raise InputError(f"no folder '{priv_path.parent}' for the key; create it first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(priv_path, 0o600)  # the umask may have narrowed it further, never widened it
        pub = key.public_key()
        pub_path.write_bytes(pub.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError as exc:
        raise InputError(f"cannot write the key to '{priv_path}': {exc.strerror}") from exc
    return priv_path, pub_path, fingerprint(pub)


def _read(path: str | Path, what: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no {what} file '{p}'" + ("; make one with 'tigao audit keygen --out FILE'"
                                                     if what == "private key" else ""))
    if p.stat().st_size > 64 * 1024:
        raise InputError(f"'{p}' is too large to be a {what} file")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} file '{p}': {exc.strerror}") from exc


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (as `keygen` writes)."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"'{path}' is not an unencrypted PEM private key ({str(exc).splitlines()[0]})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"'{path}' holds a {type(key).__name__.lstrip('_')}, not an Ed25519 key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (the `.pub` file `keygen` writes)."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"'{path}' is not a PEM public key ({str(exc).splitlines()[0]})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"'{path}' holds a {type(key).__name__.lstrip('_')}, not an Ed25519 public key")
    return key


def read_roots(values: Iterable[str]) -> list[str]:
    """Roots given on the command line: each value is a 64-digit hex root, or a file of roots: every
    line that is a root, or `root HEX` as `tigao audit seal` prints it (so its output may be kept as
    is); other lines are ignored."""
    roots: list[str] = []
    for v in values:
        if HEX64.fullmatch(v.strip()):
            roots.append(v.strip().lower())
            continue
        p = Path(v)
        if not p.is_file():
            raise InputError(f"--root '{v}' is neither a 64-digit hex root nor a file of roots")
        found = [m.group(1) for line in _read(p, "roots").decode("utf-8", "replace").splitlines()
                 if (m := ROOT_LINE.fullmatch(line.strip()))]
        if not found:
            raise InputError(f"the roots file '{p}' holds no 64-digit hex root")
        roots.extend(x.lower() for x in found)
    return list(dict.fromkeys(roots))


# ----------------------------------------------------------------------------- statements
def _at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def head_statement(seal_id: int, instance_id: int, seq: int, head: str, prev: str | None) -> bytes:
    return f"tigao-seal-head/1|{seal_id}|{instance_id}|{seq}|{head}|{prev or '-'}".encode("ascii")


def seal_statement(root: str, count: int, at: datetime, last: str | None) -> bytes:
    return f"tigao-seal/1|{root}|{count}|{_at(at)}|{last or '-'}".encode("ascii")


@dataclass
class SealHeadView:
    instance_id: int
    seq: int
    hash: str
    signature: str | None = None
    prev_head: str | None = None


@dataclass
class SealView:
    """A seal as plain data, from the database or from an audit file."""

    id: int
    at: datetime
    root: str
    instances: int
    heads: list[SealHeadView] = field(default_factory=list)
    signature: str | None = None
    key_id: str | None = None
    last_head: str | None = None


def ref(instance_id: int, seq: int) -> str:
    return f"{instance_id}:{seq}"


def last_ref(heads: list[tuple[int, int, str]]) -> str | None:
    return ref(heads[-1][0], heads[-1][1]) if heads else None


def sign_seal(key: Ed25519PrivateKey, root: str, at: datetime, heads: list[tuple[int, int, str]]) -> tuple[str, str]:
    """The seal's own signature over `heads` (sorted by instance), and the key id."""
    return key.sign(seal_statement(root, len(heads), at, last_ref(heads))).hex(), fingerprint(key.public_key())


def sign_heads(key: Ed25519PrivateKey, seal_id: int,
               heads: list[tuple[int, int, str]]) -> list[tuple[str, str | None]]:
    """[(signature, previous head)] for each head (sorted by instance) of seal `seal_id`; the first
    head's previous head is the last one."""
    out: list[tuple[str, str | None]] = []
    prev = last_ref(heads)  # a ring: the first head names the last, so removing any one is named
    for i, q, h in heads:
        out.append((key.sign(head_statement(seal_id, i, q, h, prev)).hex(), prev))
        prev = ref(i, q)
    return out


def _valid(key: Ed25519PublicKey, signature: str | None, message: bytes) -> bool:
    if not signature:
        return False
    try:
        key.verify(bytes.fromhex(signature), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def _split(r: str) -> tuple[int, int]:
    a, b = r.split(":")
    return int(a), int(b)


def check_seals(seals: list[SealView], pubkeys: list[Ed25519PublicKey] | None = None,
                roots: list[str] | None = None) -> list[Failure]:
    """What is wrong with the seals themselves: a root their heads do not give; with public keys,
    a seal or head that is unsigned, signed by another key, or not what was signed, and a head
    that was removed; with outside roots, a root that no seal has."""
    failures: list[Failure] = []
    keys = {fingerprint(k): k for k in pubkeys or []}
    for seal in seals:
        heads = sorted(seal.heads, key=lambda h: h.instance_id)
        if merkle_root([seal_leaf(h.instance_id, h.seq, h.hash) for h in heads]) != seal.root:
            failures.append(Failure(0, None, "seal root", f"seal {seal.id}'s heads do not give its root"))
        if not keys:
            continue
        key = keys.get(seal.key_id or "")
        if key is None:
            failures.append(Failure(0, None, "seal signature", f"seal {seal.id} is not signed" if not seal.signature
                                    else f"seal {seal.id} is signed by key {seal.key_id}, not by a key given"))
            continue
        present = {ref(h.instance_id, h.seq) for h in heads}
        for h in heads:
            if not _valid(key, h.signature, head_statement(seal.id, h.instance_id, h.seq, h.hash, h.prev_head)):
                failures.append(Failure(h.instance_id, h.seq, "seal signature",
                                        f"seal {seal.id}'s head for this instance is not what was signed: "
                                        "the seal or the history was rewritten"))
            elif h.prev_head and h.prev_head not in present:
                i, q = _split(h.prev_head)
                failures.append(Failure(i, q, "instance missing",
                                        f"seal {seal.id} sealed this instance at seq {q} (its signed neighbour, "
                                        f"instance {h.instance_id}, names it), but its seal head was removed"))
        if not _valid(key, seal.signature, seal_statement(seal.root, seal.instances, seal.at, seal.last_head)):
            failures.append(Failure(0, None, "seal signature",
                                    f"seal {seal.id}'s signature does not match its root, time, size or last head: "
                                    "the seal was rewritten"))
        elif seal.last_head and seal.last_head not in present:
            i, q = _split(seal.last_head)
            failures.append(Failure(i, q, "instance missing",
                                    f"seal {seal.id} sealed this instance at seq {q} as its last head "
                                    "(signed), but that head was removed"))
        elif len(heads) != seal.instances:
            failures.append(Failure(0, None, "seal signature",
                                    f"seal {seal.id} signed {seal.instances} heads, {len(heads)} remain"))
    have = {s.root for s in seals}
    for r in roots or []:
        if r not in have:
            failures.append(Failure(0, None, "seal root",
                                    f"the root {r} kept outside matches no seal: a seal was removed or rewritten"))
    return failures


def sealed_but_gone(seals: list[SealView], scope: set[int] | None, present: set[int]) -> list[Failure]:
    """Instances a seal holds that are not there (within `scope`, or anywhere when it is None)."""
    gone: dict[int, tuple[int, int]] = {}
    for seal in seals:
        for h in seal.heads:
            if h.instance_id not in present and (scope is None or h.instance_id in scope):
                prev = gone.get(h.instance_id)
                if prev is None or h.seq > prev[1]:
                    gone[h.instance_id] = (seal.id, h.seq)
    return [Failure(i, q, "instance missing", f"seal {sid} holds {q} events of this instance, "
                                               "but the instance and its events are gone")
            for i, (sid, q) in sorted(gone.items())]

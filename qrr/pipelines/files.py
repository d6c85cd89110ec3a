"""The files that runs write and go on with: each held by one run at a time (``claim``, ``locked``), the
settings a run was made with kept beside it (``.NAME.qrr.json``), and the checks that a file is the run's own."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from qrr import formats
from qrr.engine import log_odds
from qrr.errors import InputError, OutputBusy, Stopped
from qrr.formats.rows import json_text
from qrr.reranker import Scorer

log = logging.getLogger("qrr")

try:
    import fcntl
except ImportError:  # Windows: no lock, the size check alone
    fcntl = None


# What a --resume file was written with (``settings``: the model, instruction, max length and recipe) is kept beside
# it, in ``.NAME.qrr.json``, so that a run with other settings is refused before it scores anything: scoring a few
# results again (``check_written``, the check where no record is kept) let an instruction through whose scores moved
# less than the rounding of another dtype, and a finished file was not checked at all.
SETTINGS_FILE = ".{}.qrr.json"


def settings_path(path: str | os.PathLike[str]) -> str:
    """Where the settings of the output file ``path`` are kept: ``.NAME.qrr.json`` beside it (beside the file a link
    points to: a run through the link and one through the file's own name check the same record)."""
    path = os.fspath(path)
    head, name = os.path.split(os.path.realpath(path) if os.path.islink(path) else path)
    return os.path.join(head, SETTINGS_FILE.format(name))


# the settings of a record that, unknown, leave another set-up's results unnoticed (a model is told by scoring)
UNSAID = ("model", "instruction", "max_length", "recipe", "dtype")
MADE_WITH_KEPT = 20  # the distinct set-ups a record lists at most (each run that goes on may add one)


def made_with(reranker: Scorer) -> dict[str, str]:
    """What scores a run's results, as the record kept beside its file lists it (``made_with``; never checked: a
    later release scores alike): qrr's, torch's and transformers' versions, the device and, for a model from the
    Hugging Face cache, the commit of its snapshot (``revision``: a repo's name says nothing of which of its
    revisions it was); a server's URL."""
    from qrr._version import __version__

    made = {"qrr": __version__}
    url = getattr(reranker, "url", None)
    if isinstance(url, str):  # a server's: its torch and transformers are its own, not this process's
        return made | {"server": url}
    made |= {name: sys.modules[name].__version__ for name in ("torch", "transformers") if name in sys.modules}
    device = getattr(reranker, "device", None)
    if device is not None:
        made["device"] = str(device)
    folder = getattr(reranker, "model_path", None)
    if folder is not None and os.path.basename(os.path.dirname(os.fspath(folder))) == "snapshots":
        made["revision"] = os.path.basename(os.fspath(folder))
    return made


@dataclass(kw_only=True)
class _Claimed:
    """What the outputs of ``score`` and ``rerank`` share: their file (``path``), held (``claimed``) from before a
    run reads it to go on from until its writing ends, and its bytes as read (``size``); see ``claim``. The run's
    ``settings`` (names a front end says its own way: ``model``, ``instruction``, ``max_length``, ``recipe``; a value
    of ``None`` is unknown) are kept beside a file it starts, and checked against those kept beside a file it goes
    on with: another setting is an ``InputError``, another model name is left to scoring results again
    (``settings_kept``: the settings were kept, and all matched)."""

    # the file's bytes as prepared (``open_exclusive``)
    size: int | None = field(default=None, repr=False, compare=False)
    claimed: Any = field(default=None, repr=False, compare=False)  # the file, locked from ``prepare`` to its writing
    settings: dict | None = field(default=None, repr=False, compare=False)  # the run's, kept beside the file
    held: bool = field(default=False, repr=False, compare=False)  # the file held results when prepared
    settings_kept: bool = field(default=False, repr=False, compare=False)
    # the NUL bytes that ended the file when prepared, dropped with the line they cut (``zero_tail``)
    zeroed: int = field(default=0, repr=False, compare=False)
    # the record kept beside the file, where it is the file's
    kept: dict | None = field(default=None, repr=False, compare=False)
    # the settings this run has and the record does not know (a server that did not say them, an older qrr's
    # record): what was scored otherwise there goes unnoticed, and the record is never filled in with this run's
    unknown: tuple[str, ...] = field(default=(), repr=False, compare=False)
    # whether the run scores results of the file again before going on, which tells one model named two ways from
    # another (``check_written``); where not (Ray's actors), another model name than the record's is refused
    rescored: bool = field(default=True, repr=False, compare=False)
    # what scores this run's results (``made_with``), added to the record's list; known once the model has loaded
    made: dict | None = field(default=None, repr=False, compare=False)

    def _append(self):
        claimed, self.claimed = self.claimed, None
        handle = open_exclusive(self.path, self.size, claimed)  # this run's to write: then its record
        if not self.settings or (self.held and self.kept is None):
            return handle  # a file without a record (an older qrr's) gets none: its settings are not known
        record = {k: v for k, v in (self.kept or {}).items() if k not in ("first", "last")}
        # a server's unknowns keep what was known; what the record did not know stays unknown (the file's earlier
        # results were scored with it: filled in, it vouched for another instruction's results too)
        record |= {k: v for k, v in self.settings.items() if v is not None and k not in self.unknown}
        if self.settings.get("dtype", "") is None:  # scored in a dtype not known (Ray's actors, an older server's):
            record.pop("dtype", None)  # the file's is no longer one
        if self.made is not None:  # a paper's methods: which releases and which snapshot of a repo scored the file
            listed = record.get("made_with") if isinstance(record.get("made_with"), list) else []
            record["made_with"] = (listed + [self.made] * (self.made not in listed))[-MADE_WITH_KEPT:]
        if not self.held and not _keep_settings(self.path, record):
            # said now, not by the next run's note: a folder that took the results (a pre-made file in a read-only
            # folder, a bucket's mount) and not the record
            log.warning("%s: the record of its settings (%s) cannot be written beside it, so a run that goes on with "
                        "it cannot check them: go on only with the model, instruction, max length, recipe and dtype it "
                        "was written with", self.path, settings_path(self.path))  # fmt: skip
        return _Keeping(handle, self, record)

    def _written(self) -> dict:
        """What the record says of the results written, beside the settings (``ScoresOutput``: its last pair)."""
        return {}

    def _check_settings(self, auto: bool = False) -> None:
        """``InputError`` where the settings kept beside the file differ from this run's (a setting either side does
        not know is not compared). A record whose first line of the file is not the file's is another file's (one
        written over since, by other means): it is left alone."""
        self.settings_kept, self.kept, self.unknown = False, None, ()
        if not self.settings or not self.held:
            return
        kept = settings_path(self.path)
        try:
            with open(kept, "rb") as handle:
                then = orjson.loads(handle.read())
        except FileNotFoundError:
            return  # an older qrr's file, or one copied without its record: scoring results again is the check
        except (OSError, orjson.JSONDecodeError) as exc:
            then = exc
        if not isinstance(then, dict):  # damaged: going on unchecked mixed two instructions in one file
            why = then.strerror if isinstance(then, OSError) else "not qrr's JSON"
            raise InputError(f"{{output}} {self.path}: the record of its settings, {kept}, cannot be read ({why}); "
                             f"remove it to go on unchecked, or {self.verb} into a new file", "output")  # fmt: skip
        if "first" in then and then["first"] != _first_line(self.path):
            return
        self.kept = then
        self.unknown = tuple(k for k, now in self.settings.items() if now is not None and then.get(k) is None
                             and k in UNSAID)  # fmt: skip
        same = True
        for key, now in self.settings.items():
            was = then.get(key)
            if was is None or now is None:
                # a server's, or a record that does not say: what matters was not compared (a dtype's results are
                # within a result scored again's tolerance: that is no check of it)
                same = same and key not in ("model", "instruction") and (key not in self.unknown or key == "dtype")
                continue
            if was == now:
                continue
            if key == "model" and self.rescored:  # one model named two ways (a repo id, a folder it was copied to):
                same = False  # its scores tell
                continue
            if key == "model":  # nothing scored again would tell: the file went on with another model's scores
                raise InputError(f"{{output}} {self.path} was written with {{model}} {shown(was)}, not {shown(now)} "
                                 f"(as {kept} keeps), and no result is scored again here to tell one model named two "
                                 f"ways from two models: go on with that model, or {self.verb} into a new file",
                                 "output", "model")  # fmt: skip
            if key == "dtype":  # auto's differs by machine (a job requeued on another node); a server's is its own
                how = f"give {{dtype}} {was} to go on with it" if auto else f"go on with it in {was}"
                raise InputError(f"{{output}} {self.path} was written in {was} (as {kept} keeps), not {now}"
                                 f"{' (auto here)' * auto}: one file holds one dtype's scores; {how}, or {self.verb} "
                                 "into a new file", "output", "dtype")  # fmt: skip
            raise InputError(f"{{output}} {self.path} was written with {{{key}}} {shown(was)}, not {shown(now)} (as "
                             f"{kept} keeps); go on with that, or {self.verb} into a new file", "output",
                             key)  # fmt: skip
        self.settings_kept = same

    def scored_by(self, reranker: Scorer) -> None:
        """Where this run's settings leave its dtype unknown (a front end's, made before the model loaded: ``auto``),
        take ``reranker``'s and check it against the record: ``InputError`` where the file holds another dtype's
        scores. Called once the model has loaded, so only where results are left to score."""
        self.made = made_with(reranker)
        if not self.settings or self.settings.get("dtype", "") is not None or not hasattr(reranker, "settings"):
            return
        self.settings["dtype"] = reranker.settings().get("dtype")
        if self.prepared and self.settings["dtype"] is not None:
            with self._released_on_error():
                self._check_settings(auto=True)

    def release(self) -> None:
        """Give up the claim ``prepare`` took, where no writing took it over (a run that failed before)."""
        if self.claimed is not None:
            self.claimed.close()
            self.claimed = None

    @contextlib.contextmanager
    def _released_on_error(self):
        """The claim, given up where reading the file fails (a file of another run, say)."""
        try:
            yield
        except BaseException:
            self.release()
            raise


def file_size(path: str) -> int:
    """The bytes of the file at ``path``; 0 where there is none (or it cannot be read)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


@contextlib.contextmanager
def _lent_settings(output: _Claimed | None, reranker: Scorer, more: dict | None = None):
    """For the body, the guard a command's run has: an ``output`` without ``settings`` takes the reranker's (with
    ``more``), so that a file written with another instruction is refused, not gone on with; for this call only (the
    output used again with another reranker is checked against that one's). An output whose settings leave the dtype
    unknown (a front end's, made before ``auto`` resolved) takes the reranker's. Where the caller prepared the output
    first, its settings are checked now."""
    lent = output is not None and output.settings is None and hasattr(reranker, "settings")
    if lent:
        output.settings = reranker.settings() | (more or {})
        output.made = made_with(reranker)
    try:
        if lent and output.prepared:
            with output._released_on_error():
                output._check_settings()
        elif output is not None:
            output.scored_by(reranker)
        yield
    finally:
        if lent:
            output.settings = None


class _Keeping:
    """An output's handle, held as a context: when the run's writing ends (finished, failed or interrupted), its
    record is written again with the file's first line, by which a later run tells that the record is this file's."""

    def __init__(self, handle, output: _Claimed, record: dict):
        self.handle, self.output, self.record = handle, output, record

    def __enter__(self):
        return self.handle

    def __exit__(self, *exc) -> None:
        self.handle.close()
        first = _first_line(self.output.path)
        if first is not None:
            _keep_settings(self.output.path, self.record | self.output._written(), first)


def _keep_settings(path: str, settings: dict, first: str | None = None) -> bool:
    """Write ``settings`` beside the output ``path`` (``settings_path``), whole or not at all, with ``first``, the
    file's first line, where it has one; ``False`` where it could not be written."""
    kept = settings_path(path)
    record = settings | ({"first": first} if first is not None else {})
    part = f"{kept}.{os.getpid()}.part"  # a writer's own: two on a disk without locks do not mix their records
    try:
        with open(part, "wb") as handle:
            handle.write(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())  # whole on disk before the rename: a crash left an empty record, now refused
        os.replace(part, kept)
    except OSError:
        # a folder that takes the results but not a new file (or a full disk): a later run checks by scoring
        # results again
        with contextlib.suppress(OSError):
            os.remove(part)
        return False
    return True


def _first_line(path: str) -> str | None:
    """The first line of the file at ``path`` (at most its first 1,000 characters), ``None`` where it has none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            line = handle.readline(1000)
    except OSError:
        return None
    return line.rstrip("\n") or None


def shown(value) -> str:
    """A setting's value as a message shows it: JSON, cut to 80 characters."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def check_appendable(path: str, inputs: Iterable[str | os.PathLike[str] | None], kind: str, what: str) -> None:
    """Raise ``InputError`` (of the parameter ``output``) unless a long job can append ``what`` (``kind``, in a
    word) to ``path`` and cut an interrupted end off again: a file in an existing folder, not gzipped, writable
    (found now, not after hours of scoring) and none of ``inputs``, the files the job reads."""
    if os.path.isdir(path):
        raise InputError(f"{{output}} {path}: is a folder; give a file for {what}", "output")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        folder = os.path.dirname(os.path.abspath(path))
        raise InputError(f"{{output}} {path}: its folder {folder} does not exist; make it (mkdir -p), or give a file "
                         "in an existing folder", "output")  # fmt: skip
    target = os.path.dirname(os.path.realpath(path))
    if os.path.islink(path) and not os.path.isdir(target):  # a link to a new file is fine, in a folder that is not
        raise InputError(f"{{output}} {path}: a link into {target}, which is no folder", "output")
    if os.path.exists(path) and not os.path.isfile(path):  # a device or a pipe: read to go on from, it never ends
        raise InputError(f"{{output}} {path}: not a regular file", "output")
    if path.lower().endswith(".gz"):
        raise InputError(f"{{output}} {path}: qrr writes {kind} uncompressed; name it without .gz (gzip it once it "
                         "is complete)", "output")  # fmt: skip
    if not os.access(path if os.path.exists(path) else os.path.dirname(os.path.abspath(path)), os.W_OK):
        raise InputError(f"{{output}} {path}: not writable here; give a file you can write", "output")
    try:  # as root, access() says yes where the file system says no (/sys): the first write failed, hours on
        if os.path.exists(path):
            with open(path, "a", encoding="utf-8"):
                pass
        else:  # a file named after it where it will be (a link to a new file: beside its target), not the file
            # itself: another run that opened it in the moment between making and removing it lost its results
            with contextlib.suppress(FileNotFoundError):  # a link to a new file
                os.stat(path)  # a link that leads back to itself: "Too many levels of symbolic links"
            real = os.path.realpath(path)
            probe, name = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".qrr-probe",
                                           dir=os.path.dirname(real))  # fmt: skip
            try:
                os.close(probe)
            finally:  # a run that fails before its first result leaves no file behind
                os.unlink(name)
    except OSError as exc:
        raise InputError(
            f"{{output}} {path}: not writable here ({exc.strerror}); give a file you can write", "output"
        ) from None
    check_not_input(path, inputs, what)


def check_not_input(path: str, inputs: Iterable[str | os.PathLike[str] | None], what: str) -> None:
    """``InputError`` (of ``output``) where ``path`` exists and is one of ``inputs``."""
    if os.path.exists(path):
        read = next((i for i in map(_path_or_none, inputs) if i and i != "-" and os.path.exists(i)
                     and os.path.samefile(i, path)), None)  # fmt: skip
        if read is not None:
            raise InputError(f"{{output}} {path}: {read} is read as an input; give a new file for {what}", "output")


def _path_or_none(value) -> str | None:
    return None if value is None else formats.path_of(value, "inputs")


def _is_probability(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def _as_read(fields: dict) -> dict:
    """``fields`` as their JSON reads back (where it can be written: one that cannot is never in a file, and
    compares unequal as it is)."""
    try:
        return orjson.loads(json_text(fields))
    except (TypeError, orjson.JSONDecodeError):
        return fields


def _said(ids: dict) -> str:
    return orjson.dumps(ids).decode() if ids else "none"


# errors that say themselves what to do: a failure mid-run that is one of these is not wrapped in ``Stopped``
SAYS_WHAT_TO_DO = InputError | Stopped | OutputBusy


# Two runs of one command on one output (a job restarted while the old one still ran) each read the same place to
# go on from and wrote every result after it twice. So an output is locked (flock, where the system has it) from
# before it is read to go on from (``claim``) until its writing ends, and where it did not exist yet, a run that
# finds it grown since it looked stops (``open_exclusive``).


def zero_tail(path: str) -> tuple[int, int] | None:
    """Where the file at ``path`` ends in NUL bytes after a whole line, what a machine's crash leaves where the file's
    length reached the disk and its last writes did not: the end of its last whole line before them, and how many
    there are; ``None`` where it does not end so. The lines before are read as any output's are, and only then is
    the rest cut: a file without a whole line before its NULs (a database, an image of zeros) is never taken for
    one."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        start = size
        while start > 0:  # back over the NULs, a block at a time
            step = min(1 << 16, start)
            handle.seek(start - step)
            kept = len(handle.read(step).rstrip(b"\0"))
            start -= step - kept
            if kept:
                break
        if start == size:
            return None
        back = max(0, start - (1 << 20))  # a line of qrr's is far shorter
        handle.seek(back)
        newline = handle.read(start - back).rfind(b"\n")
    if newline < 0:
        return None
    return back + newline + 1, size - start


def lines_until(handle, end: int | None):
    """The lines of ``handle`` (binary, from where it is) that end by byte ``end`` (``None``: every line), read a line
    at a time: never the NULs after ``end``, which a crash may leave by the gigabyte."""
    if end is None:
        yield from handle
        return
    at = handle.tell()
    while at < end and (raw := handle.readline(end - at)):
        at += len(raw)
        yield raw


def claim(path: str):
    """``path``, where it exists, opened to append to and locked before it is read to go on from; ``None`` where it
    does not exist (creating it would leave an empty file behind a run that fails before its first result)."""
    if not os.path.exists(path):
        return None
    return locked(open(path, "a", encoding="utf-8"), path)  # noqa: SIM115 (the caller's to close)


def open_exclusive(path: str, size: int | None, claimed=None):
    """``path`` opened to append to and locked (``claimed``: as ``claim`` gave it), ``size`` its bytes when this run
    read it (``None``: it never did); ``OutputBusy`` where another run holds it or wrote to it since."""
    if size is None:
        raise InputError(f"{{output}} {path}: prepare it first (that reads how far it got)", "output")
    handle = claimed or locked(open(path, "a", encoding="utf-8"), path)  # noqa: SIM115 (the caller's to close)
    try:
        if os.fstat(handle.fileno()).st_size != size:
            raise OutputBusy(f"{{output}} {path}: another run wrote to it since this one read it; try again "
                             "to go on from what it holds", "output")  # fmt: skip
    except BaseException:
        handle.close()
        raise
    return handle


def locked(handle, path: str):
    """``handle`` (a file open to write) locked for this run alone, or ``OutputBusy`` (and closed) where another run
    holds ``path``; as it is where the file system has no ``flock``."""
    if fcntl is None:  # Windows: the size check alone
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OutputBusy(f"{{output}} {path}: another run is writing it (two would write each result twice); let it "
                         "finish, or stop it and try again", "output") from None  # fmt: skip
    except OSError as exc:  # a file system without flock (NFS without lockd, Lustre): the size check alone
        # ENOTSUP apart: on macOS it is not EOPNOTSUPP's number, as on Linux
        if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
            handle.close()
            raise
    return handle


class _Stdout:
    """``sys.stdout`` as it is at each write: a front end may stand in for it a while (a progress display does)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_STDOUT = _Stdout()


# Log-odds apart by more than 1 (2.7 times the odds) plus a tenth of their size, a result scored again is another
# set-up's: far past the rounding of bf16 against fp32, or of one device against another, which grows with them.
RESCORED_TOLERANCE = (1.0, 0.1)


def _check_rescored(then: float, now: float, result: str, path, verb: str) -> None:
    """Raise ``InputError`` where ``result`` of the file at ``path``, written with score ``then``, scores ``now``
    as another set-up's would (``RESCORED_TOLERANCE``); ``verb`` is the command's, for its advice."""
    gap, share = RESCORED_TOLERANCE
    then_odds, now_odds = _log_odds(then), _log_odds(now)
    if abs(now_odds - then_odds) <= gap + share * max(abs(then_odds), abs(now_odds)):
        return
    then_said, now_said = _apart(then, now)
    raise InputError(
        f"{result} has score {then_said} there but scores {now_said} now, so {path} holds scores of another input "
        "or set-up (other texts, another {model}, {instruction}, {max_length} or {recipe}, or a server running "
        f"another); go on with the input and set-up that wrote it, or {verb} into a new file",
        "model", "instruction", "max_length", "recipe",
    )  # fmt: skip


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with four decimals, or as many more as tell them apart (0.9999999979 and 0.99999998)."""
    for digits in range(4, 18):
        said = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if said[0] != said[1]:
            return said
    return repr(a), repr(b)


def _log_odds(p: float) -> float:
    return log_odds(min(max(p, 1e-15), 1 - 1e-15))  # a score written as 0 or 1

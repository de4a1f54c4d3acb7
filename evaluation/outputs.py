"""The one rule every command follows when it writes files.

1. **An output is never an input.** :func:`check_outputs` compares the resolved paths
   (symlinks followed) of every output with every input and with each other, so
   ``estimate --output`` equal to ``--data``, ``match --output`` equal to ``--balance`` or
   an output directory that holds an input are refused before anything is read.
2. **Foreign directories are not overwritten.** :meth:`Outputs.directory` refuses a
   non-empty directory the command did not create unless ``overwrite`` is given or the
   directory holds an earlier output of the same command (``owned``), e.g. a validation
   run that is resumed.
3. **Files appear complete or not at all.** :meth:`Outputs.write` writes each file to a
   temporary file in the target directory; :meth:`Outputs.commit` (run when the ``with``
   block ends without error) moves them into place with :func:`os.replace`. On any error
   (including Ctrl-C) the temporary files and the directories the command created are
   removed, so a failed command leaves nothing behind.

Example::

    check_outputs({"--output": output}, {"--data": data})
    with Outputs() as outputs:
        outputs.write(output, lambda tmp: table.to_csv(tmp, index=False))
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from evaluation.errors import OutputError
from evaluation.messages import listing

PathLike = str | os.PathLike[str]


def resolved(path: PathLike) -> Path:
    """Absolute path with symlinks followed (also for paths that do not exist yet)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _named(paths: Mapping[str, PathLike | None]) -> dict[str, PathLike]:
    return {label: path for label, path in paths.items() if path is not None}


def check_path_given(label: str, path: PathLike) -> None:
    """Raise :class:`OutputError` for an empty output path (it would mean the working dir)."""
    if not str(path).strip():
        raise OutputError(f"{label} is empty; name the file or directory to write.")


def check_outputs(outputs: Mapping[str, PathLike | None], inputs: Mapping[str, PathLike | None],
                  *, directories: tuple[str, ...] = ()) -> None:
    """Refuse outputs that are inputs, that coincide, or whose place cannot hold them.

    Parameters
    ----------
    outputs, inputs
        Paths by the option that names them (``{"--output": "est.csv"}``); None entries
        are skipped.
    directories
        Labels of ``outputs`` that are directories (checked to hold no input either).

    Raises
    ------
    OutputError
        Naming both options and the fix.
    """
    outputs, inputs = _named(outputs), _named(inputs)
    for label, path in outputs.items():
        check_path_given(label, path)
        check_place(label, path, directory=label in directories)
    seen: dict[Path, str] = {}
    for label, path in outputs.items():
        target = resolved(path)
        if target in seen:
            raise OutputError(f"{seen[target]} and {label} are the same file {str(path)!r}; "
                              f"give {label} a file of its own.")
        seen[target] = label
        for source_label, source in inputs.items():
            source_path = resolved(source)
            if source_path == target:
                raise OutputError(
                    f"{label} {str(path)!r} is the input {source_label} {str(source)!r}; "
                    f"writing it would destroy the input. Choose another {label}.")
            if label in directories and target in source_path.parents:
                raise OutputError(
                    f"{label} {str(path)!r} holds the input {source_label} {str(source)!r}; "
                    f"choose an output directory that holds no input.")


def check_place(label: str, path: PathLike, *, directory: bool = False) -> None:
    """Raise :class:`OutputError` unless ``path`` can be written as a file (or directory).

    The path must not be an existing directory (for a file) or file (for a directory),
    and its nearest existing ancestor must be a directory.
    """
    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise OutputError(f"{label} {str(path)!r} is an existing file, not a directory; "
                          "name a directory.")
    if not directory and path.is_dir():
        raise OutputError(f"{label} {str(path)!r} is a directory; name a file inside it, "
                          f"e.g. {str(path / 'estimates.csv')!r}.")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{label} {str(path)!r} cannot be created: {str(parent)!r} "
                                  "is a file, not a directory; choose another path.")
            return


def manifest_command(directory: Path) -> str | None:
    """Return the ``command`` of ``directory/manifest.json`` (None if absent or unreadable)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest.get("command") if isinstance(manifest, dict) else None


def with_default_permissions(path: Path) -> None:
    """Give a file made by :func:`tempfile.mkstemp` (mode 0600) the mode of a new file.

    That is ``0666`` minus the process umask, as :func:`open` would have created it.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class Outputs:
    """Write a command's files atomically; undo everything on failure (a context manager).

    Parameters
    ----------
    keep
        Called with a directory this command created when the command fails; return True
        to keep it (e.g. a validation run with finished replications, to resume later).
    """

    def __init__(self, keep: Callable[[Path], bool] | None = None) -> None:
        self.keep = keep
        self.created: list[Path] = []
        self.staged: list[tuple[Path, Path]] = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.commit()
            return
        self.discard()

    def directory(self, path: PathLike, *, label: str = "output directory",
                  overwrite: bool = False, owned: Callable[[Path], bool] | None = None
                  ) -> Path:
        """Return ``path`` as a directory to write into, creating it if needed.

        Raises
        ------
        OutputError
            If ``path`` is empty or a file, or is a non-empty directory this command did not
            create, without ``overwrite`` and not ``owned``.
        """
        check_path_given(label, path)
        check_place(label, path, directory=True)
        path = Path(path)
        if path.is_dir():
            entries = sorted(p.name for p in path.iterdir())
            if entries and not overwrite and not (owned is not None and owned(path)):
                raise OutputError(
                    f"{label} {str(path)!r} already holds files this command did not write "
                    f"({listing(entries)}); pass --overwrite (overwrite=True) to write into "
                    "it anyway, or choose a new directory.")
            return path
        self._make(path)
        return path

    def _make(self, path: Path) -> None:
        """Create ``path`` and its missing parents, remembering the top-most one created."""
        missing = [p for p in (path, *path.absolute().parents) if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise OutputError(f"cannot create the directory {str(path)!r}: a part of the path "
                              "is a file; choose another path.") from exc
        if missing:
            self.created.append(missing[-1])

    def write(self, path: PathLike, write: Callable[[Path], Any], *, label: str = "output"
              ) -> Path:
        """Stage a file: ``write(tmp)`` writes it to a temporary path next to ``path``.

        The file replaces ``path`` when the block ends without error (:meth:`commit`).
        Returns the temporary path (e.g. to hash the content).
        """
        path = Path(path)
        check_path_given(label, path)
        check_place(label, path)
        if not path.parent.is_dir():
            self._make(path.parent)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        tmp = Path(name)
        self.staged.append((tmp, path))
        write(tmp)
        with_default_permissions(tmp)
        return tmp

    def commit(self) -> None:
        """Move every staged file into place (each move is atomic)."""
        staged, self.staged = self.staged, []
        for tmp, path in staged:
            os.replace(tmp, path)
        self.created = []

    def discard(self) -> None:
        """Remove the staged files and the directories this command created."""
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        self.staged = []
        for directory in reversed(self.created):
            if self.keep is not None and directory.is_dir() and self.keep(directory):
                continue
            shutil.rmtree(directory, ignore_errors=True)
        self.created = []

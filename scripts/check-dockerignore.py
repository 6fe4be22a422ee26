#!/usr/bin/env python3
"""Checks .dockerignore against what mbo-backend/Dockerfile needs, with Docker's rules.

There is no Docker engine here to build the image, so this proves the two things a build
would show first: every source the Dockerfile COPYs from the context is sent, and the
things that must never reach a layer (build output, node_modules, databases, DBN files,
.env) are not. Matching follows Docker's: patterns in order, the last match wins, `!`
re-includes, a pattern that matches a directory covers everything below it, `**` spans
directories. Standard library only.
Usage: check-dockerignore.py [DOCKERFILE] (default mbo-backend/Dockerfile; context = repo root)
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Must stay out of the build context whatever the Dockerfile says.
MUST_EXCLUDE = [
    ".env",
    "mbo-backend/.env",
    ".git/HEAD",
    "mbo-backend/target/debug/mbo",
    "mbo-frontend/node_modules/vite/package.json",
    "mbo-frontend/build/index.html",
    "mbo-frontend/.svelte-kit/output/x.js",
    "data/mbo.db",
    "mbo-backend/data/mbo.db-wal",
    "mbo-backend/crates/feed/tests/x.dbn.zst",
    "k8s/base/deployment.yaml",
]


def to_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + r"\Z")


def load_patterns(path: Path) -> list[tuple[bool, re.Pattern]]:
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        p = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        patterns.append((negate, to_regex(p)))
    return patterns


def excluded(path: str, patterns) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, rx in patterns:
        if any(rx.match(p) for p in prefixes):
            result = not negate
    return result


def copy_sources(dockerfile: Path) -> list[str]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        sources += [a.rstrip("/") for a in args[:-1]]
    return sources


def main() -> int:
    dockerfile = ROOT / (sys.argv[1] if len(sys.argv) > 1 else "mbo-backend/Dockerfile")
    patterns = load_patterns(ROOT / ".dockerignore")
    errors = []
    sources = copy_sources(dockerfile)
    if not sources:
        errors.append(f"{dockerfile}: no COPY from the build context found")
    for src in sources:
        # A copied directory must be sent, and so must a typical file inside it.
        inside = [f"{src}/src/main.rs"] if "." not in Path(src).name else []
        for path in [src, *inside]:
            if excluded(path, patterns):
                errors.append(f"COPY {src}: {path} is excluded by .dockerignore")
    for path in MUST_EXCLUDE:
        if not excluded(path, patterns):
            errors.append(f"{path} would be sent to the Docker daemon")
    if errors:
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        print(f"check-dockerignore: FAILED: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-dockerignore: {len(sources)} COPY sources sent, "
          f"{len(MUST_EXCLUDE)} paths kept out")
    return 0


if __name__ == "__main__":
    sys.exit(main())

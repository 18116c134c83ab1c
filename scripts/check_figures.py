"""Every measured figure in README.md and docs/ says the commit it was measured on, and says so when the code
it measures has changed since.

A figure is a block of Markdown between `<!-- figure ID -->` and `<!-- /figure -->`, listed in
docs/figures.toml with its value, the command that measures it, the commit it was measured on and the code
paths it depends on. The block shows "commit `abc1234`"; when `git log COMMIT..HEAD -- PATHS` is not empty it
must also say "code changed since", and it must not say so when nothing changed. A line outside every block
that reads like a measurement (seconds, ×, MB, core-seconds, …) is a figure without an entry, unless
figures.toml lists it under `not_measured` (a setting, a limit, a constant).

    python scripts/check_figures.py          # exit status 1 and one line per problem
"""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

LISTING = Path("docs/figures.toml")
CHANGED = "code changed since"
OPEN = re.compile(r"<!-- figure ([\w-]+) -->")
CLOSE = "<!-- /figure -->"
# a number with a unit of time, speed, size, ratio or share: what a benchmark or a load test measures
MEASURED = re.compile(r"\d[\d,.]*\s?(?:×|%|ms|s|MB|GB|MiB|KiB|core-s|core-seconds|steps/s|images/s|GFLOP/s)"
                      r"(?![\w/])")


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def blocks(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """The figure blocks of a Markdown text by id, and the (line number, line) outside every block."""
    found, outside, current, lines = {}, [], None, []
    for number, line in enumerate(text.splitlines(), 1):
        opened = OPEN.search(line)
        if opened:
            current, lines = opened.group(1), []
        elif CLOSE in line and current is not None:
            found[current], current = "\n".join(lines), None
        elif current is not None:
            lines.append(line)
        else:
            outside.append((number, line))
    if current is not None:
        found[current] = "\n".join(lines) + f"\n(figure {current} is never closed)"
    return found, outside


def git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)


def changed_since(root: Path, commit: str, paths: list[str]) -> list[str] | None:
    """Commits after `commit` that touch `paths`; None when `commit` is not in this history."""
    if git(root, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}").returncode:
        return None
    return git(root, "log", "--format=%h", f"{commit}..HEAD", "--", *paths).stdout.split()


def _entry_problems(root: Path, entry: dict, shown: dict[str, dict[str, str]]) -> list[str]:
    name = entry.get("id", "?")
    where = f"figure {name} ({entry.get('file', '?')})"
    missing = [k for k in ("id", "file", "value", "command", "commit", "paths") if not entry.get(k)]
    if missing:
        return [f"{where}: figures.toml gives no {', '.join(missing)}"]
    block = shown.get(entry["file"], {}).get(name)
    if block is None:
        return [f"{where}: no <!-- figure {name} --> block in {entry['file']}"]
    problems = [f"{where}: it depends on {path}, which is not in the repository (renamed? git log cannot see "
                f"the new name's changes)" for path in entry["paths"] if not (root / path).exists()]
    if entry["value"] not in block:
        problems.append(f"{where}: its value {entry['value']!r} is not in the block")
    short = entry["commit"][:7]
    if f"commit `{short}`" not in block:
        problems.append(f"{where}: the block does not say it was measured on commit `{short}`")
    later = changed_since(root, entry["commit"], entry["paths"])
    says_changed = CHANGED in " ".join(block.split())  # a phrase wrapped across two lines is still said
    if later is None:
        problems.append(f"{where}: commit {entry['commit']} is not in this repository's history")
    elif later and not says_changed:
        problems.append(f"{where}: {', '.join(entry['paths'])} changed since {short} ({len(later)} commit(s), "
                        f"latest {later[0]}): re-measure it, or say '{CHANGED}' next to it")
    elif not later and says_changed:
        problems.append(f"{where}: says '{CHANGED}', but no commit after {short} touches {', '.join(entry['paths'])}")
    return problems


def problems(root: Path) -> list[str]:
    """Every way README.md and docs/ fail the rule above, in words; empty when they keep it."""
    root = Path(root)
    listing = tomllib.loads((root / LISTING).read_text())
    entries, exempt = listing.get("figure", []), listing.get("not_measured", [])
    shown, found = {}, []
    for path in documents(root):
        name = path.relative_to(root).as_posix()
        shown[name], outside = blocks(path.read_text())
        for number, line in outside:
            rest = line
            for text in exempt:
                rest = rest.replace(text, "")
            if MEASURED.search(rest):
                found.append(f"{name}:{number}: a figure outside every figure block: {line.strip()[:120]}")
    listed = {(e.get("file"), e.get("id")) for e in entries}
    found += [f"{name}: figure {block} has no entry in {LISTING}" for name, ids in shown.items() for block in ids
              if (name, block) not in listed]
    for entry in entries:
        found += _entry_problems(root, entry, shown)
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    found = problems(root)
    print("\n".join(found) if found else "every figure names its commit and its staleness")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
